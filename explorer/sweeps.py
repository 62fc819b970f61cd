"""Accuracy against eps, and the smallest eps that flips each digit: the paper's "exceedingly large perturbation
budget", made measurable."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from explorer import attacks, evaluate
from explorer.batch_store import BatchStore

# The app's eps slider moves on this grid too, so its curves and the committed sweeps line up.
EPS_GRID = [round(0.02 * i, 2) for i in range(26)]


def sweep(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, preset: str, *,
          batch_size: int = 100, progress: bool = True, on_attack: Callable[[str], None] | None = None,
          store: BatchStore | None = None) -> dict:
    """Accuracy at every eps of the grid for each attack, and per digit the smallest grid eps at which any of the
    four attacks fools the model (0 for a digit misclassified already, None for one never fooled). `on_attack` hears
    each attack's name as it starts (the app's progress bar); `store` keeps finished batches (see BatchStore)."""
    curves, first_fooled = {}, torch.full((len(images),), len(EPS_GRID))
    for kind in attacks.KINDS:
        if on_attack:
            on_attack(kind)
        outcome = evaluate.outcomes(model, images, labels, kind, EPS_GRID, preset=preset, batch_size=batch_size,
                                    progress=progress, store=store)
        curves[kind] = outcome.accuracy.tolist()
        grid_index = torch.arange(len(EPS_GRID))[:, None].expand_as(outcome.fooled)
        first = torch.where(outcome.fooled, grid_index, len(EPS_GRID)).amin(0)
        first_fooled = torch.minimum(first_fooled, first)
    smallest = [EPS_GRID[i] if i < len(EPS_GRID) else None for i in first_fooled.tolist()]
    return {"accuracy": curves, "smallest_flipping_eps": smallest}


def median_flipping_eps(smallest: list[float | None]) -> float | None:
    """The median of the digits' smallest flipping eps (the lower one, so it stays on the grid); None where more
    than half the digits are never flipped."""
    ordered = sorted(math.inf if eps is None else eps for eps in smallest)
    middle = ordered[(len(ordered) - 1) // 2]
    return None if math.isinf(middle) else middle
