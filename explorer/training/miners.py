"""Online triplet mining inside a batch: which (anchor, positive, negative) triplets the loss sees."""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    positives = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return positives, ~same


def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """For every anchor: its farthest positive and its nearest negative in the batch (Hermans et al. 2017)."""
    positives, negatives = _masks(labels)
    with torch.no_grad():
        distances = torch.cdist(embeddings, embeddings)
        hardest_positive = distances.masked_fill(~positives, float("-inf")).argmax(1)
        hardest_negative = distances.masked_fill(~negatives, float("inf")).argmin(1)
    anchors = (positives.any(1) & negatives.any(1)).nonzero().squeeze(1)
    return anchors, hardest_positive[anchors], hardest_negative[anchors]


def batch_all(embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """Every valid (anchor, positive, negative) triplet in the batch."""
    positives, negatives = _masks(labels)
    anchors, positive, negative = (positives[:, :, None] & negatives[:, None, :]).nonzero(as_tuple=True)
    return anchors, positive, negative


MINERS = {"batch-hard": batch_hard, "batch-all": batch_all}
