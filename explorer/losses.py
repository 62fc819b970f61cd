"""Losses on the embedding, apart from the miners that choose what they see."""

from __future__ import annotations

import torch


def triplet_margin_loss(
    embeddings: torch.Tensor,
    triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    margin: float,
) -> torch.Tensor:
    """mean(relu(|a - p| - |a - n| + margin)) in Euclidean distance, the paper's choice over angular."""
    anchors, positives, negatives = triplets
    if anchors.numel() == 0:
        return embeddings.sum() * 0.0
    a = embeddings[anchors]

    def distance(other: torch.Tensor) -> torch.Tensor:
        # clamp: the gradient of sqrt at 0 is infinite, and an adversarial digit can embed onto its clean twin
        return (a - embeddings[other]).pow(2).sum(1).clamp_min(1e-12).sqrt()

    return torch.relu(distance(positives) - distance(negatives) + margin).mean()
