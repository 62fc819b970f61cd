"""Accuracy against eps, and the smallest eps that flips each digit: the paper's "exceedingly large perturbation
budget", made measurable."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import numpy as np
import torch

from explorer import attacks, data
from explorer.evaluation import evaluate
from explorer.evaluation.batch_store import BatchStore

# The app's eps slider moves on this grid too, so its curves and the committed sweeps line up.
EPS_GRID = [round(0.02 * i, 2) for i in range(26)]
Turn = Callable[[], contextlib.AbstractContextManager]  # wraps each attack: the app runs them one at a time


def sweep(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, preset: str, *,
          batch_size: int = 100, progress: bool = True, on_attack: Callable[[str], None] | None = None,
          store: BatchStore | None = None) -> dict:
    """Accuracy at every eps of the grid for each attack, and per digit the smallest grid eps at which any of the
    four attacks fools the model (0 for a digit misclassified already, None for one never fooled). `on_attack` hears
    each attack's name as it starts (the app's progress bar); `store` keeps finished batches (see BatchStore)."""
    curves, fooled = {}, []
    for kind in attacks.KINDS:
        if on_attack:
            on_attack(kind)
        outcome = evaluate.outcomes(model, images, labels, kind, EPS_GRID, preset=preset, batch_size=batch_size,
                                    progress=progress, store=store)
        curves[kind] = outcome.accuracy.tolist()
        fooled.append(outcome.fooled)
    worst = evaluate.fooled_by_any(fooled)  # (E, N)
    grid_index = torch.arange(len(EPS_GRID))[:, None].expand_as(worst)
    first_fooled = torch.where(worst, grid_index, len(EPS_GRID)).amin(0)
    smallest = [EPS_GRID[i] if i < len(EPS_GRID) else None for i in first_fooled.tolist()]
    return {"accuracy": curves, "smallest_flipping_eps": smallest}


def median_flipping_eps(smallest: list[float | None]) -> float | None:
    """The median of the digits' smallest flipping eps (the lower one, so it stays on the grid); None where more
    than half the digits are never flipped."""
    ordered = sorted(math.inf if eps is None else eps for eps in smallest)
    middle = ordered[(len(ordered) - 1) // 2]
    return None if math.isinf(middle) else middle


def spread(count: int, total: int) -> np.ndarray:
    """`count` positions evenly over `total` images, the same ones on every run."""
    return np.linspace(0, total - 1, count).astype(int)


def flipping_examples(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, indices: np.ndarray,
                      preset: str, limit: int, class_names: tuple[str, ...] = data.MNIST.class_names,
                      turn: Turn = contextlib.nullcontext) -> list[tuple[np.ndarray, str]]:
    """Up to `limit` of the images, each at the smallest grid eps where PGD flips it, captioned with its test index,
    its true class and what it is taken for. `turn` wraps each attack (the app runs them one at a time)."""
    examples = []
    for image, label, index in zip(images, labels.tolist(), indices.tolist(), strict=True):
        if len(examples) == limit:
            break
        with turn():
            response = evaluate.eps_response(model, image, label, "pgd", np.array(EPS_GRID), preset=preset)
        if flip := response.smallest_flipping_eps:
            step = EPS_GRID.index(round(flip, 2))
            taken_for = class_names[int(response.predictions[step])]
            examples.append((response.adversarial[step], f"#{index}: {class_names[label]} → {taken_for} at eps "
                                                         f"{flip:.2f}"))
    return examples


def live(models: dict[str, torch.nn.Module], images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
         preset: str, count: int, *, examples: int = 8, class_names: tuple[str, ...] = data.MNIST.class_names,
         on_stage: Callable[[str, float], None] = lambda stage, done: None,
         turn: Turn = contextlib.nullcontext) -> dict:
    """The committed sweep's layout for `count` of these images (uint8, spread evenly over them), computed now;
    plus, per model, a few images at their flipping eps. `on_stage` hears each stage and the share done."""
    chosen = spread(count, len(labels))
    x, y = data.to_tensor(images[chosen]), torch.from_numpy(labels[chosen])
    result = {"models": list(models), "preset": preset, "digits": count, "eps": EPS_GRID, "accuracy": {},
              "flips": {}}
    stages = len(models) * (len(attacks.KINDS) + 1)
    done = 0

    def stage(text: str) -> None:
        nonlocal done
        on_stage(text, done / stages)
        done += 1

    for name, model in models.items():
        with turn():
            swept = sweep(model, x, y, preset, progress=False,
                          on_attack=lambda kind, name=name: stage(f"{name}: {kind.upper()} at {len(EPS_GRID)} eps "
                                                                  "values"))
        result["accuracy"][name] = {preset: swept["accuracy"]}
    for name, model in models.items():
        stage(f"{name}: the digits at their flipping eps")
        result["flips"][name] = flipping_examples(model, x, y, indices[chosen], preset, examples, class_names, turn)
    return result
