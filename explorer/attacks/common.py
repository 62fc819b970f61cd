"""What every attack shares: its result and the checks on its inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttackResult:
    adversarial: torch.Tensor  # (E, N, 1, 28, 28)
    fooled: torch.Tensor  # bool (E, N): the returned image is misclassified
    zero_gradient: torch.Tensor  # bool (E, N): the input gradient was all zero at some step (gradient masking?)
    iterates: torch.Tensor | None = None  # (steps + 1, E, N, 1, 28, 28), from the start point on

    @property
    def zero_gradient_count(self) -> int:
        return int(self.zero_gradient.sum())


def as_eps_tensor(eps: float | torch.Tensor | list[float], device: torch.device) -> torch.Tensor:
    values = torch.as_tensor(eps, dtype=torch.float32, device=device).reshape(-1)
    if values.numel() == 0:
        raise ValueError("eps needs at least one value")
    if bool(((values < 0) | (values > 1)).any()):
        raise ValueError(f"eps must lie in [0, 1] (pixels do); got {values.tolist()}")
    return values


def check_inputs(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"images must be shaped (N, 1, 28, 28), not {tuple(images.shape)}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be shaped ({images.shape[0]},), not {tuple(labels.shape)}")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise ValueError("images must be pixels in [0, 1]")
