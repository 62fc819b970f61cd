"""APGD-CE from output-diversified starts (ODI, Tashiro et al. 2020): before each restart, a couple of signed steps
of size eps that push the logits along a random direction w ~ U(-1, 1)^C, so the restarts set out from points
spread over the output space rather than from uniform noise around the digit, which on these models mostly lands
in one basin. Measured on the digits of `triplet-pgd` that outlived AutoAttack's budget (docs/converged.md), it
breaks more per gradient than random starts, targeted DLR or a margin loss per target.
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.attacks.apgd import apgd_restarts, logits_objective, project, random_start
from explorer.attacks.params import AttackParams

DIVERSIFYING_STEPS = 2


def diversified_start(model: nn.Module, clean: torch.Tensor, eps: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """A start point for each digit: a uniform draw in its eps-ball, then `DIVERSIFYING_STEPS` signed steps of eps
    ascending w . logits for a random w per digit (drawn on the CPU, so a seed gives the same start on any device)."""
    classes = model(clean[:1]).shape[1]
    direction = torch.empty(len(clean), classes).uniform_(-1, 1, generator=generator).to(clean.device)
    current = random_start(clean, eps, generator)
    for _ in range(DIVERSIFYING_STEPS):
        current = current.detach().requires_grad_(True)
        with torch.enable_grad():
            gradient, = torch.autograd.grad((model(current) * direction).sum(), current)
        current = project(current + eps * gradient.sign(), clean, eps)
    return current.detach()


def attack_rows(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
                params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return apgd_restarts(logits_objective(model, labels, params.loss), clean, labels, eps, steps=params.steps,
                         restarts=params.restarts, generator=generator, early_stop=params.early_stop,
                         start=lambda rows: diversified_start(model, clean[rows], eps[rows], generator))
