"""The one batched forward pass without gradients: clean accuracy, embeddings and verdicts over thousands of images
all go through it, in batches small enough for a laptop's memory."""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def in_batches(function: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
               batch_size: int = 1000) -> torch.Tensor:
    """`function` (a model, or its `embed`) over `images` in batches, concatenated."""
    return torch.cat([function(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def misclassified(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
                  batch_size: int = 500) -> torch.Tensor:
    """bool (N,) on the CPU: the digits the model gets wrong unattacked."""
    return (in_batches(model, images, batch_size).argmax(1) != labels).cpu()
