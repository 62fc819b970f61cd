"""APGD (Croce and Hein 2020): PGD whose step size adapts, on any per-digit loss.

Each digit starts at a random corner-ish point of its eps-ball with a step of 2 eps, and moves with momentum 0.75
(the new point mixes the signed-gradient step with the last move). At checkpoints spaced 22% of the budget apart at
first, then closer (each gap 3% shorter, never under 6%), a digit whose loss rose on fewer than 75% of the steps
since the last checkpoint, or whose best loss did not improve since a checkpoint that left its step alone, halves
its step and goes back to its best point. Every digit keeps its own schedule, so dropping the digits already fooled
changes nothing for the rest.

The objective is a function of the attacked images and the rows they are of, returning logits (for the verdict)
and each digit's loss: cross-entropy and DLR from the logits, targeted DLR towards a class per digit, or the latent
loss measured in the embedding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from explorer.attacks.losses import per_digit_loss
from explorer.attacks.params import AttackParams

# (images of the attacked rows, the row indices) -> (logits, per-digit loss)
Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
MOMENTUM = 0.75
RHO = 0.75  # the share of steps since the last checkpoint whose loss must have risen to keep the step size


def checkpoints(steps: int) -> list[int]:
    """The iterations after which step sizes are checked: 22% of the budget, then gaps 3% shorter, at least 6%."""
    first, shrink, shortest = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    points, gap = [], first
    position = first
    while position <= steps:
        points.append(position)
        gap = max(gap - shrink, shortest)
        position += gap
    return points


def project(images: torch.Tensor, clean: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.minimum(torch.maximum(images, clean - eps), clean + eps), 0, 1)


def random_start(clean: torch.Tensor, eps: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uniform draw scaled so its largest pixel change is eps, as APGD starts. Drawn on the CPU, so a seed gives
    the same start on every device."""
    noise = torch.empty(clean.shape).uniform_(-1, 1, generator=generator).to(clean.device)
    noise = noise / noise.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (clean + eps * noise).clamp(0, 1)


def value_and_gradient(objective: Objective, images: torch.Tensor, rows: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits, loss = objective(images, rows)
        gradient, = torch.autograd.grad(loss.sum(), images)
    return logits.detach(), loss.detach(), gradient.detach()


def apgd(objective: Objective, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, *, steps: int,
         generator: torch.Generator, early_stop: bool = True, start: torch.Tensor | None = None,
         record_iterates: bool = False) -> dict[str, torch.Tensor | None]:
    """One run of APGD on every digit of `clean` (N, 1, 28, 28) with its own `eps` (N, 1, 1, 1).

    Returns "adversarial" (a digit's first misclassified iterate, or its highest-loss one when never fooled or
    when early_stop is off), "fooled", "zero_gradient" (all-zero at some step), "best_loss" and, when recorded,
    "iterates" (steps + 1, N, ...) and "losses" (steps + 1, N): the current point and its loss at each step."""
    n = len(clean)
    current = random_start(clean, eps, generator) if start is None else start.clone()
    rows = torch.arange(n, device=clean.device)
    logits, loss, gradient = value_and_gradient(objective, current, rows)
    fooled = logits.argmax(1) != labels
    found = torch.where(fooled.view(-1, 1, 1, 1), current, clean)
    zero_gradient = gradient.flatten(1).abs().amax(1) == 0
    best, best_gradient, best_loss = current.clone(), gradient.clone(), loss.clone()
    step = 2 * eps * torch.ones(n, 1, 1, 1, device=clean.device)
    previous = current.clone()
    history = torch.full((steps + 1, n), float("nan"), device=clean.device)
    history[0] = loss
    iterates = [current.clone()] if record_iterates else None
    halved_last_check = torch.ones(n, dtype=torch.bool, device=clean.device)
    best_at_last_check = best_loss.clone()
    checks, last_check = set(checkpoints(steps)), 0
    active = rows if not early_stop else rows[~fooled]

    for iteration in range(steps):
        if active.numel() == 0:
            break
        x, at = clean[active], current[active]
        weight = MOMENTUM if iteration > 0 else 1.0
        stepped = project(at + step[active] * gradient[active].sign(), x, eps[active])
        moved = project(at + weight * (stepped - at) + (1 - weight) * (at - previous[active]), x, eps[active])
        previous[active] = at
        current[active] = moved
        logits, loss, new_gradient = value_and_gradient(objective, moved, active)
        gradient[active] = new_gradient
        zero_gradient[active] |= new_gradient.flatten(1).abs().amax(1) == 0
        hit = (logits.argmax(1) != labels[active]) & ~fooled[active]
        found[active[hit]] = moved[hit]
        fooled[active[hit]] = True
        history[iteration + 1, active] = loss
        better = loss > best_loss[active]
        improved = active[better]
        best[improved], best_gradient[improved], best_loss[improved] = moved[better], new_gradient[better], loss[better]
        if record_iterates:
            iterates.append(current.clone())
        if iteration + 1 in checks:
            window = history[last_check : iteration + 2, active]
            rises = (window[1:] > window[:-1]).sum(0)
            stalled = rises <= RHO * (iteration + 1 - last_check)
            no_progress = ~halved_last_check[active] & (best_at_last_check[active] >= best_loss[active])
            halve = stalled | no_progress
            halved_last_check[active], best_at_last_check[active] = halve, best_loss[active]
            restart = active[halve]
            step[restart] /= 2
            current[restart], gradient[restart] = best[restart], best_gradient[restart]
            last_check = iteration + 1
        if early_stop:
            active = active[~fooled[active]]

    keep_first_hit = fooled.view(-1, 1, 1, 1) if early_stop else torch.zeros(n, 1, 1, 1, dtype=torch.bool,
                                                                                 device=clean.device)
    return {"adversarial": torch.where(keep_first_hit, found, best), "fooled": fooled, "zero_gradient": zero_gradient,
            "best_loss": best_loss,
            "iterates": torch.stack(iterates) if record_iterates else None,
            "losses": history if record_iterates else None}


def apgd_restarts(objective: Objective, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, *,
                  steps: int, restarts: int, generator: torch.Generator, early_stop: bool = True,
                  start: Callable[[torch.Tensor], torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """APGD from `restarts` random starts (or from `start(rows)`, the start points of those rows of `clean`), each
    only on the digits the runs before left standing. Returns the adversarial images, which digits are fooled, and
    which had an all-zero gradient."""
    adversarial, fooled = clean.clone(), torch.zeros(len(clean), dtype=torch.bool, device=clean.device)
    zero_gradient, best_loss = torch.zeros_like(fooled), torch.full((len(clean),), -math.inf, device=clean.device)
    for _ in range(restarts):
        rows = (~fooled).nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        # the objective indexes its per-digit data by row: give it the rows of the full batch
        run = apgd(lambda images, at, rows=rows: objective(images, rows[at]), clean[rows], labels[rows], eps[rows],
                   steps=steps, generator=generator, early_stop=early_stop,
                   start=None if start is None else start(rows))
        take = run["fooled"] | (run["best_loss"] > best_loss[rows])
        adversarial[rows[take]] = run["adversarial"][take]
        best_loss[rows] = torch.maximum(best_loss[rows], run["best_loss"])
        fooled[rows] |= run["fooled"]
        zero_gradient[rows] |= run["zero_gradient"]
    return adversarial, fooled, zero_gradient


def logits_objective(model: nn.Module, labels: torch.Tensor, loss: str,
                     targets: torch.Tensor | None = None) -> Objective:
    def objective(images: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(images)
        return logits, per_digit_loss(logits, labels[rows], loss, None if targets is None else targets[rows])
    return objective


def untargeted(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
               params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """APGD-CE or APGD-DLR, as params.loss says."""
    return apgd_restarts(logits_objective(model, labels, params.loss), clean, labels, eps, steps=params.steps,
                         restarts=params.restarts, generator=generator, early_stop=params.early_stop)


def targeted(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
             params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """APGD-T: targeted DLR towards the runner-up of the clean logits, then the next, `params.targets` in all,
    each only on the digits the targets before left standing."""
    with torch.no_grad():
        ranked = model(clean).argsort(1, descending=True)
    adversarial, fooled = clean.clone(), torch.zeros(len(clean), dtype=torch.bool, device=clean.device)
    zero_gradient = torch.zeros_like(fooled)
    for rank in range(1, (params.targets or 9) + 1):
        rows = (~fooled).nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        objective = logits_objective(model, labels[rows], "dlr-targeted", ranked[rows, rank])
        found, hit, zero = apgd_restarts(objective, clean[rows], labels[rows], eps[rows], steps=params.steps,
                                         restarts=params.restarts, generator=generator,
                                         early_stop=params.early_stop)
        adversarial[rows[hit]] = found[hit]
        fooled[rows] |= hit
        zero_gradient[rows] |= zero
    return adversarial, fooled, zero_gradient
