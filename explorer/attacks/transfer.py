"""The transfer attack: digits made adversarial on another model (or the mean logits of several), then shown to
the target. It needs no gradient of the target at all, so it still works where the target's gradients are masked;
a defence that holds against white-box attacks but falls to transferred digits is hiding its gradients."""

from __future__ import annotations

import torch
from torch import nn

from explorer import models
from explorer.attacks.apgd import apgd_restarts, logits_objective
from explorer.attacks.params import AttackParams


class MeanLogits(nn.Module):
    """Several models as one: the mean of their logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(images) for member in self.members]).mean(0)


def source_model(source: str, device: torch.device) -> nn.Module:
    """The checkpoint named by `source`, or the mean of those joined by '+'."""
    members = [models.load(name, device=device) for name in source.split("+")]
    return members[0] if len(members) == 1 else MeanLogits(members)


def attack_rows(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
                params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    source = source_model(params.source or "softmax", clean.device)
    # On the source, every iteration runs: the digit that climbs its loss furthest transfers best.
    crafted, _, _ = apgd_restarts(logits_objective(source, labels, params.loss), clean, labels, eps,
                                  steps=params.steps, restarts=params.restarts, generator=generator,
                                  early_stop=False)
    with torch.no_grad():
        fooled = model(crafted).argmax(1) != labels
    return crafted, fooled, torch.zeros_like(fooled)  # the target's gradient is never taken
