"""Arrays worked out once per checkpoint and kept on disk: the reference digits' embeddings and their UMAP layout.

Plain .npz files (never a pickle), named after what they were computed from (the checkpoint's weights, the digits,
the settings), not after the float results, which differ in their last bits between CPUs. The shipped checkpoints'
arrays are in assets/projections/ (`explorer layouts` writes them); any other checkpoint's are computed on first use
and kept in the cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np

from explorer import data, files

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "projections"


def key(kind: str, weights_sha256: str, digits: np.ndarray, settings: str = "") -> str:
    """The file name of an array computed from a checkpoint's weights, these digits and these settings."""
    digits_key = hashlib.sha256(np.ascontiguousarray(digits).tobytes() + settings.encode()).hexdigest()[:16]
    return f"{kind}-{weights_sha256[:16]}-{digits_key}.npz"


def read(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array kept at `path`, or None when it is missing, damaged, of another shape or not finite."""
    arrays = files.read_arrays(path, {"values": shape})
    if arrays is None or not np.isfinite(arrays["values"]).all():
        return None
    return arrays["values"].astype(np.float32)


def write(path: Path, values: np.ndarray) -> None:
    files.write_arrays(path, values=np.asarray(values, dtype=np.float32))


def cached(name: str) -> Path:
    return data.data_dir() / "projections" / name


def get(name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The shipped array if there is one, else the one cached earlier."""
    for path in (SHIPPED / name, cached(name)):
        if (values := read(path, shape)) is not None:
            return values
    return None


def put(name: str, values: np.ndarray) -> None:
    with contextlib.suppress(OSError):  # a read-only cache folder costs the next start a recomputation, nothing more
        write(cached(name), values)
