"""The one signature every attack is called by: `run` for the full result, `attack` for the images."""

from __future__ import annotations

import torch
from torch import nn

from explorer.attacks import apgd, latent, odi, square, transfer
from explorer.attacks.common import AttackResult, Pairs, check_inputs
from explorer.attacks.iterative import iterate
from explorer.attacks.params import KINDS, Attack

# kind -> (model, clean rows, labels, eps rows, params, generator) -> (adversarial, fooled, zero_gradient)
RUNNERS = {"apgd-ce": apgd.untargeted, "apgd-dlr": apgd.untargeted, "apgd-t": apgd.targeted,
           "apgd-odi": odi.attack_rows, "latent": latent.attack_rows, "transfer": transfer.attack_rows,
           "square": square.attack_rows}
# Attacks whose every iterate can be returned (one run from one start): the paper's four and untargeted APGD.
RECORDABLE = (*KINDS, "apgd-ce", "apgd-dlr")


def resolve(attack: str | Attack, preset: str | None = None, **changes) -> Attack:
    """`attack` itself when it is an Attack (which carries its preset and parameters: no others may come with it),
    else the Attack of that kind under `preset` (paper unless told) with `changes` made."""
    if isinstance(attack, Attack):
        if preset is not None or changes:
            raise TypeError(f"an Attack carries its preset and parameters: {attack.kind} takes no "
                            f"{', '.join(['preset'] * (preset is not None) + sorted(changes))} beside it")
        return attack
    return Attack.of(attack, preset or "paper", **changes)


def run(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: str | Attack,
    eps: float | torch.Tensor | list[float],
    *,
    preset: str | None = None,
    seed: int = 0,
    return_iterates: bool = False,
    already_fooled: torch.Tensor | None = None,
    **changes,
) -> AttackResult:
    """Attack `images` at every eps at once; see `attack` for the arguments. Returns the full AttackResult.

    already_fooled: bool (E, N), pairs another attack has fooled already. They count as fooled and are never
    attacked (their returned image is the input), which is how an evaluation skips what a cheaper attack settled.
    return_iterates: every iterate, (steps + 1, E, N, 1, 28, 28), for one run of the paper's four or APGD.
    """
    attack = resolve(attack, preset, **changes)
    kind, params = attack.kind, attack.params
    check_inputs(images, labels)
    if kind in KINDS:
        return iterate(model, images, labels, eps, params, seed=seed, return_iterates=return_iterates,
                       already_fooled=already_fooled)
    if return_iterates and (kind not in RECORDABLE or params.restarts > 1):
        raise ValueError(f"iterates are recorded for one run of {', '.join(RECORDABLE)}: not for {kind}"
                         + (" with restarts" if kind in RECORDABLE else ""))
    pairs = Pairs.of(images, labels, eps, already_fooled)
    # Noise is drawn on the CPU, so a seed gives the same start points on every device.
    generator = torch.Generator().manual_seed(seed)
    adversarial = pairs.clean.clone()
    zero_gradient = torch.zeros_like(pairs.fooled)
    rows = (~pairs.fooled).nonzero().squeeze(1)
    iterates = None
    if return_iterates:
        objective = apgd.logits_objective(model, pairs.labels[rows], params.loss)
        recorded = apgd.apgd(objective, pairs.clean[rows], pairs.labels[rows], pairs.eps[rows], steps=params.steps,
                             generator=generator, early_stop=params.early_stop, record_iterates=True)
        found, hit, zero = recorded["adversarial"], recorded["fooled"], recorded["zero_gradient"]
        iterates = pairs.clean.repeat(params.steps + 1, 1, 1, 1, 1)
        iterates[:, rows] = recorded["iterates"]
    elif rows.numel():
        found, hit, zero = RUNNERS[kind](model, pairs.clean[rows], pairs.labels[rows], pairs.eps[rows], params,
                                         generator)
    if rows.numel():
        adversarial[rows], pairs.fooled[rows], zero_gradient[rows] = found, hit, zero
    return pairs.result(adversarial, zero_gradient, iterates)


def attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: str | Attack, eps: float,
           **options) -> torch.Tensor:
    """Adversarial images (N, 1, 28, 28) at one budget `eps`. `attack`: an Attack, or the kind of one: the
    paper's fgsm, bim, mim, pgd, or the stronger apgd-ce, apgd-dlr, apgd-t (targeted DLR), apgd-odi (output-
    diversified starts), latent (the embedding attack), transfer (made on `source`), square (no gradients), whose
    parameters are then the preset's ("paper" unless `preset="strong"`) with any of steps, step_size, random_start,
    decay, loss, restarts, early_stop, targets, p_init, source changed. `seed` seeds the random starts.
    `attack_grid` takes several budgets at once.

    images: float (N, 1, 28, 28) in [0, 1]; labels: int (N,). The input tensor is never modified.
    """
    if not (isinstance(eps, (int, float)) or (torch.is_tensor(eps) and eps.ndim == 0)):
        raise TypeError("attack takes one eps; attack_grid takes a list or 1-D tensor of them")
    return run(model, images, labels, attack, eps, **options).adversarial[0]


def attack_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: str | Attack,
                eps: torch.Tensor | list[float], **options) -> torch.Tensor:
    """`attack` at each of E budgets in one batched call: (E, N, 1, 28, 28)."""
    grid = eps if torch.is_tensor(eps) else torch.as_tensor(eps)
    if grid.ndim != 1:
        raise TypeError("attack_grid takes a list or 1-D tensor of eps; attack takes one")
    return run(model, images, labels, attack, grid, **options).adversarial
