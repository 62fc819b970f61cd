"""2-D views of the 64-d latent space: PCA, or UMAP fitted once per checkpoint and kept on disk.

Both are fitted on the embeddings of the bundled 2,000 clean test digits. New points (adversarial digits) go through
PCA's linear map; for UMAP they are placed at the distance-weighted mean of their nearest clean neighbours in 64-d,
the placement UMAP's own `transform` starts from, without its stochastic refinement: a point lands in the cluster its
64-d neighbours belong to, and the same inputs always give the same picture. UMAP layouts are kept on disk
(explorer.stored), keyed by the checkpoint's weights and the digits they were fitted on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from explorer import data
from explorer.latent import stored

METHODS = ("pca", "umap")
UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "random_state": 0, "n_jobs": 1}
NEIGHBOURS = 10


@dataclass(frozen=True)
class Projection:
    method: str
    reference: np.ndarray  # (M, 64) the clean embeddings it was fitted on
    coordinates: np.ndarray  # (M, 2) their 2-D positions
    linear: tuple[np.ndarray, np.ndarray] | None = None  # PCA's (mean (64,), components (2, 64))

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 64) -> (N, 2) in the same view as the reference points."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self.linear is not None:
            mean, components = self.linear
            return (embeddings - mean) @ components.T
        distances = np.sqrt(np.maximum(
            (embeddings**2).sum(1)[:, None] - 2 * embeddings @ self.reference.T + (self.reference**2).sum(1)[None],
            0))
        nearest = np.argpartition(distances, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        weights = 1 / (np.take_along_axis(distances, nearest, 1) + 1e-6)
        weights /= weights.sum(1, keepdims=True)
        return np.einsum("nk,nkd->nd", weights, self.coordinates[nearest])


def fit_pca(embeddings: np.ndarray) -> Projection:
    mean = embeddings.mean(0)
    # The top two right-singular vectors, signs fixed so a model's picture never flips between runs.
    _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
    components = vt[:2] * np.sign(vt[:2, :1] + 1e-12)
    return Projection("pca", embeddings, (embeddings - mean) @ components.T, (mean, components))


def layout_name(weights_sha256: str, digits: np.ndarray) -> str:
    settings = ",".join(f"{k}={v}" for k, v in sorted(UMAP_SETTINGS.items()))
    return stored.key("umap", weights_sha256, digits, settings)


def has_layout(weights_sha256: str, digits: np.ndarray) -> bool:
    return stored.get(layout_name(weights_sha256, digits), (len(digits), 2)) is not None


def import_umap() -> ModuleType:
    # numba compiles UMAP's kernels on first use (10+ s); keeping them on disk makes later processes start warm.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(data.data_dir() / "numba"))
    import umap

    return umap


def warm_up() -> None:
    """Compile UMAP's kernels in this process by fitting a few random points: afterwards a real fit of 2,000
    embeddings takes seconds instead of half a minute. The app runs this in the background."""
    points = np.random.default_rng(0).normal(size=(300, 64)).astype(np.float32)
    import_umap().UMAP(**UMAP_SETTINGS).fit_transform(points)


def fit_umap(embeddings: np.ndarray, name: str) -> Projection:
    """UMAP of the embeddings, read from disk when this checkpoint's layout of these digits was fitted before."""
    if (coordinates := stored.get(name, (len(embeddings), 2))) is not None:
        return Projection("umap", embeddings, coordinates)
    coordinates = import_umap().UMAP(**UMAP_SETTINGS).fit_transform(embeddings).astype(np.float32)
    stored.put(name, coordinates)
    return Projection("umap", embeddings, coordinates)


def fit(method: str, embeddings: np.ndarray, weights_sha256: str, digits: np.ndarray) -> Projection:
    """A 2-D view of `embeddings`, the 64-d features of `digits` under the checkpoint with these weights."""
    if method == "pca":
        return fit_pca(embeddings)
    if method == "umap":
        return fit_umap(embeddings, layout_name(weights_sha256, digits))
    raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
