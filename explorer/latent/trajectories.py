"""Digits attacked over an eps grid, followed through the latent space: the paper's Figure 2, in motion."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from explorer import attacks

# Coarser than the sweeps' grid: each value is one animation frame, and every frame is a full attack.
EPS_FRAMES = tuple(round(0.05 * i, 2) for i in range(11))


@dataclass(frozen=True)
class Trajectories:
    eps: np.ndarray  # (E,)
    labels: np.ndarray  # (N,) true classes
    embeddings: np.ndarray  # (E, N, 64) the adversarial digits' embeddings; eps 0 is the clean digit
    predictions: np.ndarray  # (E, N)

    @property
    def fooled(self) -> np.ndarray:
        return self.predictions != self.labels


@torch.no_grad()
def follow(model: torch.nn.Module, eps_grid: tuple[float, ...] | np.ndarray, adversarial: torch.Tensor,
           labels: np.ndarray) -> Trajectories:
    """Embed and classify digits already attacked over the grid: adversarial (E, N, 1, 28, 28)."""
    n_eps, n = adversarial.shape[:2]
    embeddings = model.embed(adversarial.flatten(0, 1))
    predictions = model.head(embeddings).argmax(1)
    return Trajectories(np.asarray(eps_grid, dtype=np.float32), np.asarray(labels),
                     embeddings.reshape(n_eps, n, -1).numpy(), predictions.reshape(n_eps, n).numpy())


def migrate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, attack: str | attacks.Attack,
            eps_grid: tuple[float, ...] = EPS_FRAMES, **options) -> Trajectories:
    """Attack (N, 1, 28, 28) digits at every eps of the grid in one batched call, and embed every result."""
    attack = attacks.resolve(attack, **options)
    # Every digit runs the whole attack, even once fooled: the picture shows where the attack takes it, not just
    # the first step across a boundary.
    attack = replace(attack, params=replace(attack.params, early_stop=False))
    adversarial = attacks.attack_grid(model, images, labels, attack, eps_grid)
    return follow(model, eps_grid, adversarial, labels.numpy())
