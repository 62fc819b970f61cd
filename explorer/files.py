"""Files written whole or not at all. Every file the explorer writes goes through a temporary file beside it that
replaces it in one step, so a reader, or a run killed while writing, finds the old file or the complete new one,
never half of one."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def temporary_beside(path: Path) -> Path:
    """NAME.tmp.SUFFIX: the suffix stays last because numpy's savez appends .npz to any other name."""
    return path.with_name(f"{path.stem}.tmp{path.suffix}")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield the temporary path to write; when the block ends, it becomes `path`. If the block fails, it is removed
    and `path` is untouched (a killed process leaves it behind, and `temporary_beside` names it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Named arrays as one .npz file (never a pickle), whole or not at all."""
    with replacing(path) as temporary:
        np.savez(temporary, **arrays)


def read_arrays(path: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray] | None:
    """The named arrays of the .npz at `path`, or None when it is missing, damaged or holds other shapes: the caller
    computes them again. The one reader of the content-addressed stores (latent.stored, evaluation.batch_store)."""
    try:
        with np.load(path, allow_pickle=False) as kept:
            arrays = {name: kept[name] for name in shapes}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if any(arrays[name].shape != shape for name, shape in shapes.items()):
        return None
    return arrays
