"""The verified cache: `fetch` fills it from the first source that works, `load_split` reads it. Every source must
produce byte-identical arrays, so the cache is checked against one content digest whatever filled it."""

from __future__ import annotations

import os
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from explorer import files
from explorer.data.datasets import DATASETS, SPLITS, Arrays, DataError, DatasetSpec, cache_path, content_digest
from explorer.data.sources import sources


def check(arrays: Arrays, spec: DatasetSpec) -> None:
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        expected = spec.split_sizes[split]
        if images.shape != (expected, 28, 28) or labels.shape != (expected,):
            raise DataError(f"{split} split has shape {images.shape}/{labels.shape}, expected {expected} digits")
    digest = content_digest(arrays)
    if digest != spec.content_sha256:
        raise DataError(f"{spec.name} content digest {digest} differs from the expected {spec.content_sha256}")


def write_cache(arrays: Arrays, path: Path) -> None:
    """A reader sees either the old cache or the complete new one, never a partial file."""
    with files.replacing(path) as temporary, open(temporary, "wb") as out:
        np.savez(out, **arrays)


def fetch(name: str = "mnist", local: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Fill the cache from the first source that works; say which. Raise DataError listing all failures."""
    spec = DATASETS[name]
    target = cache_path(name)
    existing = next(folder for folder in (target.parent, *target.parent.parents) if folder.exists())
    if not os.access(existing, os.W_OK):
        raise DataError(f"the data folder {target.parent} is not writable: set EXPLORER_DATA to a folder you own")
    # A fetch killed while writing leaves its temporary file behind (the cache itself is only ever replaced whole)
    files.temporary_beside(target).unlink(missing_ok=True)
    tried = []
    for label, source in sources(spec, local):
        try:
            arrays = source()
            check(arrays, spec)
        except (DataError, OSError, pickle.UnpicklingError, ValueError, subprocess.SubprocessError) as exc:
            tried.append(f"  - {label}: {exc}")
            log(f"{label}: failed ({exc})")
            continue
        write_cache(arrays, target)
        log(f"{spec.name}: fetched from {label}; cached in {target}")
        return target
    raise DataError(
        f"could not fetch {spec.name}. Tried:\n" + "\n".join(tried) + f"\nFix: {spec.install_hint}."
    )


_MEMORY: dict[str, Arrays] = {}


def load_arrays(name: str = "mnist") -> Arrays:
    """All splits of a dataset, fetching on first use; verified against the content digest once per process."""
    if name in _MEMORY:
        return _MEMORY[name]
    spec = DATASETS[name]
    path = cache_path(name)
    if not path.is_file():
        fetch(name)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        check(arrays, spec)
    except (OSError, ValueError, KeyError, DataError) as exc:
        raise DataError(f"the cached {name} at {path} is unreadable ({exc}): delete it and run "
                        "`explorer data fetch`") from exc
    _MEMORY[name] = arrays
    return arrays


def load_split(split: str, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels of a dataset's 'train' or 'test' split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    arrays = load_arrays(dataset)
    return arrays[f"{split}_images"], arrays[f"{split}_labels"]


def to_tensor(images: np.ndarray):
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], the pixel space every model and attack works in."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)
