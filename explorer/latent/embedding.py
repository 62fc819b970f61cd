"""A model's embeddings of images: its latent space, computed in batches, kept on disk for the reference images."""

from __future__ import annotations

import numpy as np
import torch

from explorer import data
from explorer.latent import stored
from explorer.models.forward import in_batches


def embed(model: torch.nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """uint8 images (N, 28, 28) -> their embeddings (N, D): 64-d for the ConvNet."""
    return in_batches(model.embed, data.to_tensor(images), batch_size).numpy()


def reference_embeddings(model: torch.nn.Module, digits: np.ndarray) -> np.ndarray:
    """`embed`, read from disk when this checkpoint's embeddings of these digits were kept before: the latent page
    opens without running 2,000 digits through each model."""
    name = stored.key("embeddings", model.card["weights_sha256"], digits)
    if (embeddings := stored.get(name, (len(digits), model.embedding_dim))) is not None:
        return embeddings
    embeddings = embed(model, digits)
    stored.put(name, embeddings)
    return embeddings
