"""Arrays worked out once per checkpoint and kept on disk: the reference digits' embeddings and their UMAP layout.

Plain .npz files (never a pickle), named after what they were computed from (the checkpoint's weights, the digits,
the settings), not after the float results, which differ in their last bits between CPUs. The shipped checkpoints'
arrays are in assets/projections/ (`explorer layouts` writes them); any other checkpoint's are computed on first use
and kept in the cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from explorer import data, files

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "projections"


def file_name(kind: str, weights_sha256: str, digits: np.ndarray, settings: str = "") -> str:
    digits_key = hashlib.sha256(np.ascontiguousarray(digits).tobytes() + settings.encode()).hexdigest()[:16]
    return f"{kind}-{weights_sha256[:16]}-{digits_key}.npz"


def read(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array kept at `path`, or None when it is missing, damaged, of another shape or not finite."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            values = stored["values"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # the caller computes it again
    if values.shape != shape or not np.isfinite(values).all():
        return None
    return values.astype(np.float32)


def write(path: Path, values: np.ndarray) -> None:
    """Whole or not at all, so a reader never finds half an array."""
    with files.replacing(path) as temporary:
        np.savez(temporary, values=np.asarray(values, dtype=np.float32))


def cached(name: str) -> Path:
    return data.data_dir() / "projections" / name


def find(name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The shipped array if there is one, else the one cached earlier."""
    for path in (SHIPPED / name, cached(name)):
        if (values := read(path, shape)) is not None:
            return values
    return None


def keep(name: str, values: np.ndarray) -> None:
    with contextlib.suppress(OSError):  # a read-only cache folder costs the next start a recomputation, nothing more
        write(cached(name), values)
