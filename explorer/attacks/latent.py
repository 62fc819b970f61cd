"""The adaptive attack on this defence: the triplet models decide by where a digit lands among the class clusters
of the 64-d embedding, so push the embedding itself out of its own cluster and into the nearest other one.

APGD ascends, per digit, ||e(x') - c_y||^2 - min_{t != y} ||e(x') - c_t||^2, e the model's embedding and c the class
centroids of the embeddings of the 2,000 test images bundled with the model's dataset; the verdict that counts is
still the head's.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from explorer import data, models
from explorer.attacks.apgd import apgd_restarts
from explorer.attacks.losses import latent_loss
from explorer.attacks.params import AttackParams
from explorer.models.forward import in_batches

_CENTROIDS: weakref.WeakKeyDictionary[nn.Module, torch.Tensor] = weakref.WeakKeyDictionary()


def class_centroids(model: nn.Module) -> torch.Tensor:
    """(10, D): the mean embedding of each class over its dataset's bundled test images, once per model object."""
    if model not in _CENTROIDS:
        images, labels, _ = data.load_sample(models.dataset_of(getattr(model, "card", {})))
        device = next(model.buffers() if isinstance(model, models.GraphNet) else model.parameters()).device
        embeddings = in_batches(model.embed, data.to_tensor(images).to(device), 500)
        labels_t = torch.from_numpy(labels).to(device)
        _CENTROIDS[model] = torch.stack([embeddings[labels_t == c].mean(0) for c in range(10)])
    return _CENTROIDS[model]


def attack_rows(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
                params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    centroids = class_centroids(model)

    def objective(images: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = model.embed(images)
        return model.head(embeddings), latent_loss(embeddings, labels[rows], centroids)

    return apgd_restarts(objective, clean, labels, eps, steps=params.steps, restarts=params.restarts,
                         generator=generator, early_stop=params.early_stop)
