"""Accuracy against eps, and the smallest eps that flips each digit: the paper's "exceedingly large perturbation
budget", made measurable."""

from __future__ import annotations

import torch

from explorer import attacks, evaluate

# The app's eps slider moves on this grid too, so its curves and the committed sweeps line up.
EPS_GRID = [round(0.02 * i, 2) for i in range(26)]


def sweep(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, preset: str, *,
          batch_size: int = 100, progress: bool = True) -> dict:
    """Accuracy at every eps of the grid for each attack, and per digit the smallest grid eps at which any of the
    four attacks fools the model (0 for a digit misclassified already, None for one never fooled)."""
    curves, first_fooled = {}, torch.full((len(images),), len(EPS_GRID))
    for kind in attacks.KINDS:
        outcome = evaluate.outcomes(model, images, labels, kind, EPS_GRID, preset=preset, batch_size=batch_size,
                                    progress=progress)
        curves[kind] = outcome.accuracy.tolist()
        grid_index = torch.arange(len(EPS_GRID))[:, None].expand_as(outcome.fooled)
        first = torch.where(outcome.fooled, grid_index, len(EPS_GRID)).amin(0)
        first_fooled = torch.minimum(first_fooled, first)
    smallest = [EPS_GRID[i] if i < len(EPS_GRID) else None for i in first_fooled.tolist()]
    return {"accuracy": curves, "smallest_flipping_eps": smallest}
