"""The gradient-masking lens (Tramer et al. 2018): what an attacker sees around one digit.

The loss surface over a 2-D slice x + a sign(g) + b r, g the input gradient and r a random sign direction, shows
whether the gradient points anywhere useful: on a model that masks its gradients the loss is flat near x and
rises in a cliff further out, so a gradient step goes nowhere while a step in a random direction does better. Next
to it, the margin (best other logit minus the true one; above 0 the digit is fooled) at each iterate of a weak and
a strong attack shows why one stalls where the other does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from explorer import attacks
from explorer.attacks.losses import per_digit_loss


@dataclass
class Surface:
    along_gradient: np.ndarray  # (G,) the a values
    along_random: np.ndarray  # (G,) the b values
    loss: np.ndarray  # (G, G) cross-entropy, [b index, a index]
    prediction: np.ndarray  # (G, G) the class the model gives each point


def loss_surface(model: nn.Module, image: torch.Tensor, label: int, eps: float, *, points: int = 21,
                 seed: int = 0) -> Surface:
    """Cross-entropy at clip(x + a sign(g) + b r) for a, b on a grid over [-eps, eps]; image is (1, 28, 28)."""
    x = image[None].detach().requires_grad_(True)
    y = torch.tensor([label])
    with torch.enable_grad():
        gradient, = torch.autograd.grad(per_digit_loss(model(x), y, "ce").sum(), x)
    direction = gradient.sign()[0]
    random = (torch.randint(0, 2, image.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1).float()
    steps = torch.linspace(-eps, eps, points)
    b, a = torch.meshgrid(steps, steps, indexing="ij")
    grid = (image + a.reshape(-1, 1, 1, 1) * direction + b.reshape(-1, 1, 1, 1) * random).clamp(0, 1)
    with torch.no_grad():
        logits = model(grid)
        loss = per_digit_loss(logits, y.expand(len(grid)), "ce")
    return Surface(steps.numpy(), steps.numpy(), loss.view(points, points).numpy(),
                   logits.argmax(1).view(points, points).numpy())


def margin_curve(model: nn.Module, image: torch.Tensor, label: int, attack: str | attacks.Attack, eps: float, *,
                 seed: int = 0, **options) -> np.ndarray:
    """The margin at each iterate of one run of `attack` (the start point first): one start, and early stopping
    off whatever the attack says, so the curve runs to the end of the budget."""
    attack = attacks.resolve(attack, **options)
    attack = replace(attack, params=replace(attack.params, restarts=1, early_stop=False))
    result = attacks.run(model, image[None], torch.tensor([label]), attack, eps, seed=seed, return_iterates=True)
    iterates = result.iterates[:, 0, 0]
    with torch.no_grad():
        return per_digit_loss(model(iterates), torch.full((len(iterates),), label), "margin").numpy()
