"""Square (Andriushchenko et al. 2020), L-inf: a random search that asks only for the model's logits, never its
gradients, so a defence that merely hides its gradients does not stop it.

Each digit starts from vertical stripes of +-eps. Each query redraws one random square window of the perturbation
to +-eps (one sign per window) and keeps the change when the margin (true logit minus the best other) falls or the
digit is fooled. The window covers p of the pixels, p halving on AutoAttack's schedule from p_init (0.8) at queries
10, 50, 200, 500, 1,000, 2,000, 4,000, 6,000 and 8,000. Every digit draws its own window and signs.

Square's cost is thousands of forward passes per digit and nothing else, so it queries the model frozen into an
inference graph (convolutions fused with their activations): about 1.5x faster on a CPU, logits equal to 1e-5.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from explorer.attacks.losses import per_digit_loss
from explorer.attacks.params import AttackParams

HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(p_init: float, query: int) -> float:
    """The share of pixels a window covers at `query` (0-based)."""
    return p_init / 2 ** sum(query > point for point in HALVINGS)


def signs(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).float().to(device)


def inference_forward(model: nn.Module, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """`model` frozen for gradient-free queries, or `model` itself where freezing does not give the same logits, at
    the example's batch size and at another (Square's batches shrink; a trace may have baked a size in)."""
    if model.training:
        return model  # freezing needs eval mode, and a model in training mode must keep its batch statistics
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about a user's own model; the check below decides
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example)))
            same = all(torch.allclose(frozen(batch), model(batch), rtol=1e-4, atol=1e-4)
                       for batch in (example, torch.cat([example, example[:1]])))
    except Exception:  # any model TorchScript cannot trace is queried as it is
        return model
    return frozen if same else model


def attack_rows(model: nn.Module, clean: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor,
                params: AttackParams, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, channels, height, width = clean.shape
    device = clean.device
    best = (clean + eps * signs((n, channels, 1, width), generator, device)).clamp(0, 1)
    forward = inference_forward(model, best)
    with torch.no_grad():
        logits = forward(best)
    margin = -per_digit_loss(logits, labels, "margin")
    fooled = logits.argmax(1) != labels
    grid_rows = torch.arange(height, device=device).view(1, 1, -1, 1)
    grid_columns = torch.arange(width, device=device).view(1, 1, 1, -1)
    for query in range(params.steps - 1):  # the stripes were the first query
        active = (~fooled).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        side = min(max(round(math.sqrt(window_share(params.p_init or 0.8, query) * height * width)), 1), height - 1)
        top = torch.randint(0, height - side, (len(active), 1, 1, 1), generator=generator).to(device)
        left = torch.randint(0, width - side, (len(active), 1, 1, 1), generator=generator).to(device)
        window = ((grid_rows >= top) & (grid_rows < top + side) & (grid_columns >= left)
                  & (grid_columns < left + side))
        x, at = clean[active], best[active]
        moved = torch.where(window, at + 2 * eps[active] * signs((len(active), channels, 1, 1), generator, device), at)
        moved = torch.minimum(torch.maximum(moved, x - eps[active]), x + eps[active]).clamp(0, 1)
        with torch.no_grad():
            logits = forward(moved)
        new_margin = -per_digit_loss(logits, labels[active], "margin")
        hit = logits.argmax(1) != labels[active]
        keep = (new_margin < margin[active]) | hit
        best[active[keep]] = moved[keep]
        margin[active[keep]] = new_margin[keep]
        fooled[active[hit]] = True
    return best, fooled, torch.zeros_like(fooled)  # no gradient is taken, so none can be found all zero
