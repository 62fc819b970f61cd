"""What one batch of a recipe does: the eps of its adversarial twins, its loss, its learning rate."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from explorer import attacks, models
from explorer.models.forward import in_batches
from explorer.training.losses import triplet_margin_loss
from explorer.training.miners import MINERS
from explorer.training.recipes import Recipe


def accuracy(model: models.ConvNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    return int((in_batches(model, images, batch_size).argmax(1) == labels).sum()) / len(images)


def learning_rate(recipe: Recipe, step: int, total_steps: int) -> float:
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return recipe.lr


def adversary_eps(recipe: Recipe, epoch_progress: float) -> float:
    """The attack budget after `epoch_progress` epochs (fractional): the warm-up ramp, then the recipe's eps."""
    if recipe.eps_warmup_epochs <= 0:
        return recipe.eps
    return recipe.eps * min(1.0, epoch_progress / recipe.eps_warmup_epochs)


def batch_loss(model: models.ConvNet, recipe: Recipe, images: torch.Tensor, labels: torch.Tensor,
               seed: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's loss on one batch, and the logits its accuracy is read from."""
    if recipe.adversary:
        adversarial = attacks.attack(model, images, labels, recipe.adversary, eps, seed=seed)
        images, labels = torch.cat([images, adversarial]), torch.cat([labels, labels])
    if recipe.objective == "softmax":
        logits = model(images)
        return F.cross_entropy(logits, labels), logits
    embeddings = model.embed(images)
    logits = model.head(embeddings.detach())  # stop-gradient: the head never moves the network below it
    triplet = triplet_margin_loss(embeddings, MINERS[recipe.miner](embeddings, labels), recipe.margin)
    return triplet + F.cross_entropy(logits, labels), logits
