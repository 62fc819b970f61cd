"""Losses on the embedding, apart from the miners that choose what they see."""

from __future__ import annotations

import torch

from explorer.training.miners import Triplets


def triplet_margin_loss(embeddings: torch.Tensor, triplets: Triplets, margin: float) -> torch.Tensor:
    """relu(|a - p| - |a - n| + margin) in Euclidean distance (the paper's choice over angular), averaged over
    the triplets that still violate the margin, so satisfied ones do not dilute the signal as training goes on."""
    anchors, positives, negatives = triplets
    # clamp: the gradient of sqrt at 0 is infinite, and an adversarial digit can embed onto its clean twin
    distances = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    violations = torch.relu(distances[anchors, positives] - distances[anchors, negatives] + margin)
    active = violations > 0
    if not bool(active.any()):
        return embeddings.sum() * 0.0
    return violations[active].mean()
