"""Online triplet mining inside a batch: which (anchor, positive, negative) triplets the loss sees."""

from __future__ import annotations

import torch


def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every anchor with a positive in the batch: its farthest positive and its nearest negative.

    Hermans et al. (2017). The hardest pairs are the ones closest to a class boundary, which is where an
    L-inf attacker crosses; easy triplets contribute nothing but dilute the loss.
    """
    with torch.no_grad():
        distances = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        positives = same & ~eye
        has_both = positives.any(1) & (~same).any(1)
        hardest_positive = distances.masked_fill(~positives, float("-inf")).argmax(1)
        hardest_negative = distances.masked_fill(same, float("inf")).argmin(1)
    anchors = has_both.nonzero().squeeze(1)
    return anchors, hardest_positive[anchors], hardest_negative[anchors]
