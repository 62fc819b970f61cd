"""What an attacker ascends, per digit. Each is summed over a batch by `attacker_loss`, so a digit's gradient does
not depend on the batch it travels in."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# "ce-probabilities" is cross-entropy taken on the softmax outputs instead of the logits (a double softmax): a
# common slip that saturates and masks gradients. It is here only to show how weak-attack numbers arise.
# "dlr" is Croce and Hein's difference of logits ratio, which does not saturate and is invariant to the logits'
# scale; "dlr-targeted" its targeted form (it needs target classes: APGD-T); "latent" is measured in the embedding
# (it needs class centroids: the latent attack).
LOSSES = ("ce", "margin", "ce-probabilities", "dlr", "dlr-targeted", "latent")
UNTARGETED_LOSSES = ("ce", "margin", "ce-probabilities", "dlr")


def per_digit_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str,
                   targets: torch.Tensor | None = None) -> torch.Tensor:
    """The attacker's loss of each digit, shaped (N,)."""
    if loss == "ce":
        return F.cross_entropy(logits, labels, reduction="none")
    if loss == "ce-probabilities":
        return F.cross_entropy(logits.softmax(1), labels, reduction="none")
    true_logit = logits.gather(1, labels[:, None]).squeeze(1)
    if loss == "margin":
        other_best = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
        return other_best - true_logit
    ranked = logits.sort(1, descending=True).values
    if loss == "dlr":
        # the best other logit: the runner-up when the true class leads, else the leader
        other_best = torch.where(logits.argmax(1) == labels, ranked[:, 1], ranked[:, 0])
        return (other_best - true_logit) / (ranked[:, 0] - ranked[:, 2] + 1e-12)
    if loss == "dlr-targeted":
        if targets is None:
            raise ValueError("the targeted DLR loss needs target classes")
        target_logit = logits.gather(1, targets[:, None]).squeeze(1)
        return (target_logit - true_logit) / (ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + 1e-12)
    raise ValueError(f"the {loss!r} loss is not computed from logits alone")


def attacker_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Summed over the batch. The attacker ascends it."""
    return per_digit_loss(logits, labels, loss).sum()


def latent_loss(embeddings: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Per digit: squared distance to its own class's centroid minus that to the nearest other centroid. Ascending
    it carries the embedding out of its cluster and into the nearest other one."""
    distances = torch.cdist(embeddings, centroids).square()
    own = distances.gather(1, labels[:, None]).squeeze(1)
    nearest_other = distances.masked_fill(F.one_hot(labels, centroids.shape[0]).bool(), float("inf")).amin(1)
    return own - nearest_other
