"""Finished batches of a long evaluation, kept on disk so that an interrupted `explorer evaluate` goes on where it
stopped (on a laptop CPU the full Table 1 and sweeps of one model take hours).

A batch's file is named after everything its outcome depends on: the model's weights, the digits and their labels,
the attack with its resolved parameters, the eps values, the seed, the device type, the torch version and the attack
code itself. Change any of them and the batch is attacked again; a damaged file is attacked again too. The folder is
emptied once the result file it served has been written.

A run begun on one machine may be finished on another with other hardware (a GPU machine lent for a while, then a
laptop): told the other machine's device type and torch version, the store also counts the batches finished there as
finished, and counts them, so that the result rows can say which of their batches came from where.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path

import torch

from explorer import files
from explorer.evaluation.runners import LocalRunner, Runner

# everything a batch's outcome depends on beyond its key's settings: the attacks, and the jobs that run them (an
# evaluation's orchestration, which decides the batches, their settings and what stands, is in the key already)
_ATTACK_CODE = [*sorted((Path(__file__).parents[1] / "attacks").glob("*.py")),
                *(Path(__file__).with_name(name) for name in ("evaluate.py", "runners.py"))]
DEVICE_TYPES = ("cpu", "cuda", "mps")
BOOLEAN = ("fooled", "zero_gradient")


def _digest(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.nn.Module):
            for name, tensor in part.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(part, torch.Tensor):
            digest.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class BatchStore:
    """Outcomes of finished attack batches in `folder` (named arrays: fooled and zero_gradient, bool (E, N), and
    whatever else a job returns), and the runner that attacks the batches not finished yet (this process unless
    told: `explorer evaluate --ray`)."""

    def __init__(self, folder: Path, runner: Runner | None = None, adopt: str | None = None) -> None:
        """`adopt` ("cuda/2.11.0+cu130": a device type and a torch version) counts the batches finished with them
        as finished here too; `adopted` says how many were, `adopted_from` from where."""
        self.folder = folder
        self.runner = runner or LocalRunner()
        code = [path.read_bytes() for path in _ATTACK_CODE]
        self.code = _digest(*code, torch.__version__)
        self.adopted = 0
        self.adopted_from: dict[str, str] | None = None
        self._elsewhere: dict[str, str] = {}
        if adopt is not None:
            device_type, _, version = adopt.partition("/")
            if device_type not in DEVICE_TYPES or not version:
                raise ValueError(f"--adopt-batches takes DEVICE/TORCH_VERSION, e.g. cuda/2.11.0+cu130 (DEVICE one of "
                                 f"{', '.join(DEVICE_TYPES)}; the version as torch.__version__ printed it on the "
                                 f"machine that finished them), not {adopt!r}")
            self.adopted_from = {"device": device_type, "torch": version}
            self._adopt_code = _digest(*code, version)

    def __len__(self) -> int:
        return sum(not path.name.endswith(".tmp.npz") for path in self.folder.glob("*.npz"))

    def key(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *settings: object) -> str:
        key = _digest(self.code, images.device.type, model, images, labels, *settings)
        if self.adopted_from is not None:
            self._elsewhere[key] = _digest(self._adopt_code, self.adopted_from["device"], model, images, labels,
                                           *settings)
        return key

    def get(self, key: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor] | None:
        """The batch's named arrays, or None when it was never finished (here, or on the adopted machine) or its
        file is damaged."""
        if (kept := self._read(key, shapes)) is not None or key not in self._elsewhere:
            return kept
        if (kept := self._read(self._elsewhere[key], shapes)) is not None:
            self.adopted += 1
        return kept

    def _read(self, key: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor] | None:
        kept = files.read_arrays(self.folder / f"{key}.npz", shapes)
        if kept is None or any(kept[name].dtype != bool for name in BOOLEAN if name in kept):
            return None
        return {name: torch.from_numpy(array) for name, array in kept.items()}

    def seconds(self, key: str) -> float | None:
        """How long the batch took on the machine that attacked it, or None for a batch kept before batches kept
        their time."""
        for name in (key, self._elsewhere.get(key)):
            if name and (kept := files.read_arrays(self.folder / f"{name}.npz", {"seconds": (1,)})) is not None:
                return float(kept["seconds"][0])
        return None

    def put(self, key: str, **arrays: torch.Tensor) -> None:
        """Whole or not at all, so a run killed while writing leaves no half batch behind."""
        files.write_arrays(self.folder / f"{key}.npz", **{name: array.cpu().numpy() for name, array in arrays.items()})

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.folder)
