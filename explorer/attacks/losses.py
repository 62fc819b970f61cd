"""What an attacker ascends."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# "ce-probabilities" is cross-entropy taken on the softmax outputs instead of the logits (a double softmax): a
# common slip that saturates and masks gradients. It is here only to show how weak-attack numbers arise.
LOSSES = ("ce", "margin", "ce-probabilities")


def attacker_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Summed, so each digit's gradient is independent of the batch it travels in. The attacker ascends it."""
    if loss == "ce":
        return F.cross_entropy(logits, labels, reduction="sum")
    if loss == "ce-probabilities":
        return F.cross_entropy(logits.softmax(1), labels, reduction="sum")
    true_logit = logits.gather(1, labels[:, None]).squeeze(1)
    other_best = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (other_best - true_logit).sum()
