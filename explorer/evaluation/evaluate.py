"""Accuracy of a model under attack, over many digits, in batches, with a progress bar."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from explorer import attacks
from explorer.evaluation.batch_store import BatchStore
from explorer.evaluation.runners import LocalRunner, attack_batch


@dataclass
class Outcome:
    """Per-digit results of attacking many digits: what accuracies, flags and agreement tests are read from."""

    fooled: torch.Tensor  # bool (E, N)
    zero_gradient: torch.Tensor  # bool (E, N): the input gradient was all zero at some step

    @property
    def accuracy(self) -> torch.Tensor:
        return 1 - self.fooled.double().mean(1)


def outcomes(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str | attacks.Attack,
    eps: float | list[float] | torch.Tensor,
    *,
    preset: str | None = None,
    batch_size: int = 500,
    progress: bool = True,
    screen: str | None = None,
    store: BatchStore | None = None,
    **changes,
) -> Outcome:
    """Attack every digit at every eps, in batches. An Attack runs as it is; a kind runs with its preset's
    parameters and `changes`, early_stop on unless changed: digits are dropped from the attack as soon as they are
    fooled, which gives the same or a lower accuracy at a fraction of the cost. Batch b is seeded with its first
    index, so a digit's random start depends only on the batch size, never on the device.

    screen: a cheaper attack kind (e.g. "fgsm", with the same preset, loss and early_stop) run first; the attack
    then attacks only the digits it left standing. A digit counts as fooled if either attack fooled it, so the
    accuracy can only be the same or lower than the attack alone, and each digit the screen settles costs one
    gradient instead of many.

    store: where finished batches are kept, so that the same call after an interruption attacks only the rest."""
    if not isinstance(attack, attacks.Attack):
        changes = {"early_stop": True, **changes}
    chosen = attacks.resolve(attack, preset, **changes)
    screening = (attacks.Attack.of(screen, chosen.preset, loss=chosen.params.loss,
                                   early_stop=chosen.params.early_stop) if screen else None)
    eps_values = torch.as_tensor(eps, dtype=torch.float64).flatten().tolist()
    settings = (chosen.kind, chosen.params.as_record(), screen, screening and screening.params.as_record(),
                eps_values)
    batches = list(range(0, len(images), batch_size))
    fooled: list[torch.Tensor | None] = [None] * len(batches)
    zero_gradient: list[torch.Tensor | None] = [None] * len(batches)
    keys: list[str | None] = [None] * len(batches)
    jobs, waiting = [], []
    for number, start in enumerate(batches):
        batch = slice(start, start + batch_size)
        if store is not None:
            keys[number] = store.key(model, images[batch], labels[batch], start, *settings)
            shape = (len(eps_values), len(images[batch]))
            if (kept := store.get(keys[number], {"fooled": shape, "zero_gradient": shape})) is not None:
                fooled[number], zero_gradient[number] = kept["fooled"], kept["zero_gradient"]
                continue
        jobs.append({"images": images[batch].clone(), "labels": labels[batch].clone(), "attack": chosen, "eps": eps,
                     "seed": start, "screen": screening})
        waiting.append(number)
    label = f"{screen} then {chosen.kind}" if screen else chosen.kind
    runner = store.runner if store is not None else LocalRunner()
    bar = tqdm(total=len(batches), initial=len(batches) - len(jobs), desc=f"{label} ({chosen.preset})",
               disable=not progress, leave=False)
    for index, (batch_fooled, batch_zero) in runner.map(attack_batch, model, jobs):
        number = waiting[index]
        fooled[number], zero_gradient[number] = batch_fooled, batch_zero
        if store is not None:
            store.put(keys[number], fooled=batch_fooled, zero_gradient=batch_zero)
        bar.update(1)
    bar.close()
    return Outcome(torch.cat(fooled, 1), torch.cat(zero_gradient, 1))


def fooled_by_any(fooled: Iterable[torch.Tensor | np.ndarray]) -> torch.Tensor:
    """Each digit's worst case over several attacks (and the clean verdict, if given): fooled by at least one. The
    one place a 'worst case over attacks' is taken; the shapes (N,) or (E, N) must agree."""
    return functools.reduce(torch.logical_or, (torch.as_tensor(f) for f in fooled))


def robust_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: str | attacks.Attack,
                    eps: float | list[float] | torch.Tensor, **options) -> torch.Tensor:
    """Fraction of digits still classified correctly, one value per eps (see `outcomes` for the options)."""
    return outcomes(model, images, labels, attack, eps, **options).accuracy


@dataclass
class EpsResponse:
    """One digit attacked over a grid of eps: what the app's slider indexes into."""

    eps: np.ndarray  # (E,)
    adversarial: np.ndarray  # (E, 28, 28) float32 in [0, 1]
    probabilities: np.ndarray  # (E, 10)
    label: int

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(1)

    @property
    def smallest_flipping_eps(self) -> float | None:
        flipped = np.flatnonzero(self.predictions != self.label)
        return float(self.eps[flipped[0]]) if len(flipped) else None


def eps_response(model: torch.nn.Module, image: torch.Tensor, label: int, attack: str | attacks.Attack,
                 eps_grid: np.ndarray, **options) -> EpsResponse:
    """Attack one (1, 28, 28) digit at every eps of the grid in a single batched call."""
    labels = torch.tensor([label])
    adversarial = attacks.attack_grid(model, image[None], labels, attack, eps_grid, **options)[:, 0]
    with torch.no_grad():
        probabilities = model(adversarial).softmax(1)
    return EpsResponse(np.asarray(eps_grid, dtype=np.float32), adversarial[:, 0].numpy(), probabilities.numpy(),
                       label)
