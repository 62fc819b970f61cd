"""The 2,000 real test images (200 a class) bundled with each dataset, so the app and the fast tests run before
any fetch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.data.cache import load_split

ASSETS = Path(__file__).resolve().parents[2] / "assets"


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
