"""L-inf FGSM, BIM, MIM and PGD in pixel space, from one attack loop.

Every attack is the same iteration, differing only in its parameters:
    g   = grad_x loss(model(x_t), y)
    m   = decay * m + g / mean|g|          (momentum; with decay = 0 this is just sign(g))
    x_t = clip_[0,1](x + clip_eps(x_t + step * sign(m) - x))
FGSM is one step of size eps; BIM is that loop from x; MIM adds decay; PGD starts at a uniform random point.
The order of operations (step, clip the perturbation to eps, clip to [0, 1]) follows torchattacks, so results
agree with it to float precision.

Several epsilons are attacked in one batched call: images (N, ...) and eps (E,) give results shaped (E, N, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from explorer.attacks.common import AttackResult, Pairs
from explorer.attacks.losses import attacker_loss
from explorer.attacks.params import AttackParams


def iterate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float | torch.Tensor | list[float],
    params: AttackParams,
    *,
    seed: int = 0,
    return_iterates: bool = False,
    already_fooled: torch.Tensor | None = None,
) -> AttackResult:
    """FGSM, BIM, MIM or PGD, as `params` say, at every eps at once; see `explorer.attacks.run`."""
    if return_iterates and params.restarts > 1:
        raise ValueError("iterates are recorded for a single run: use restarts=1 with return_iterates")
    pairs = Pairs.of(images, labels, eps, already_fooled)
    x, y, eps_all, fooled = pairs.clean, pairs.labels, pairs.eps, pairs.fooled
    step_all = eps_all / params.steps if params.step_size is None else torch.full_like(eps_all, params.step_size)
    # Noise is drawn on the CPU, so a seed gives the same start points on every device.
    generator = torch.Generator().manual_seed(seed)
    device = images.device

    result = x.clone()
    zero_gradient = torch.zeros_like(fooled)
    trajectory: list[torch.Tensor] = []

    for _ in range(params.restarts):
        active = (~fooled).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        adv = x[active].clone()
        if params.random_start:
            noise = torch.empty(adv.shape).uniform_(-1, 1, generator=generator).to(device)
            adv = (adv + noise * eps_all[active]).clamp_(0, 1)
        momentum = torch.zeros_like(adv)

        for step in range(params.steps + 1):
            if return_iterates:
                snapshot = result.clone()
                snapshot[active] = adv
                trajectory.append(snapshot)
            last = step == params.steps
            adv.requires_grad_(not last)
            with torch.set_grad_enabled(not last):
                logits = model(adv)
            keep = None
            # Every run ends with a check, so `fooled` is exact and restarts only retry digits still standing.
            if params.early_stop or last:
                hit = logits.detach().argmax(1) != y[active]
                result[active[hit]] = adv.detach()[hit]
                fooled[active[hit]] = True
                keep = ~hit
            if last or (keep is not None and not keep.any()):
                active, adv = active[keep], adv.detach()[keep]  # `last` always sets keep
                break
            targets = y[active]
            if keep is not None:
                logits, targets = logits[keep], targets[keep]
            gradient, = torch.autograd.grad(attacker_loss(logits, targets, params.loss), adv)
            if keep is not None:
                active, adv, momentum, gradient = active[keep], adv[keep], momentum[keep], gradient[keep]
            scale = gradient.abs().mean(dim=(1, 2, 3), keepdim=True)
            zero_gradient[active] |= scale.view(-1) == 0  # index_put, not boolean indexing: no device sync
            # Guard: an all-zero gradient would give 0/0 = NaN here (torchattacks' MI-FGSM has no such guard).
            momentum = params.decay * momentum + gradient / torch.where(scale == 0, torch.ones_like(scale), scale)
            adv = adv.detach() + step_all[active] * momentum.sign()
            delta = torch.clamp(adv - x[active], min=-eps_all[active], max=eps_all[active])
            adv = torch.clamp(x[active] + delta, min=0, max=1).detach()
        result[active] = adv.detach()

    return pairs.result(result, zero_gradient, torch.stack(trajectory) if return_iterates else None)
