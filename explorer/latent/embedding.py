"""A model's embeddings of images: its latent space, computed in batches, kept on disk for the reference images."""

from __future__ import annotations

import numpy as np
import torch

from explorer import data
from explorer.latent import stored


@torch.no_grad()
def embed(model: torch.nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> their 64-d embeddings (N, 64)."""
    return np.concatenate([model.embed(data.to_tensor(images[i : i + batch_size])).numpy()
                           for i in range(0, len(images), batch_size)])


def reference_embeddings(model: torch.nn.Module, digits: np.ndarray) -> np.ndarray:
    """`embed`, read from disk when this checkpoint's embeddings of these digits were kept before: the latent page
    opens without running 2,000 digits through each model."""
    name = stored.file_name("embeddings", model.card["weights_sha256"], digits)
    if (embeddings := stored.find(name, (len(digits), model.embedding_dim))) is not None:
        return embeddings
    embeddings = embed(model, digits)
    stored.keep(name, embeddings)
    return embeddings
