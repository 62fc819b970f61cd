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


@dataclass
class Pairs:
    """The (eps, digit) pairs of one call, flattened to rows: eps e of digit i is row e * N + i."""

    clean: torch.Tensor  # (E * N, 1, 28, 28)
    labels: torch.Tensor  # (E * N,)
    eps: torch.Tensor  # (E * N, 1, 1, 1)
    fooled: torch.Tensor  # bool (E * N,): pairs another attack fooled already start fooled and are never attacked
    shape: tuple[int, ...]  # (E, N, 1, 28, 28)

    @classmethod
    def of(cls, images: torch.Tensor, labels: torch.Tensor, eps: float | torch.Tensor | list[float],
           already_fooled: torch.Tensor | None) -> Pairs:
        device = images.device
        eps_values = as_eps_tensor(eps, device)
        n_eps, n = eps_values.numel(), images.shape[0]
        fooled = torch.zeros(n_eps * n, dtype=torch.bool, device=device)
        if already_fooled is not None:
            if already_fooled.shape != (n_eps, n):
                raise ValueError(f"already_fooled must be shaped ({n_eps}, {n}), not {tuple(already_fooled.shape)}")
            fooled |= already_fooled.to(device).reshape(-1)
        return cls(images.detach().repeat(n_eps, 1, 1, 1), labels.to(device).repeat(n_eps),
                   eps_values.repeat_interleave(n).view(-1, 1, 1, 1), fooled, (n_eps, n, *images.shape[1:]))

    def result(self, adversarial: torch.Tensor, zero_gradient: torch.Tensor,
               iterates: torch.Tensor | None = None) -> AttackResult:
        n_eps, n = self.shape[:2]
        return AttackResult(adversarial.view(self.shape), self.fooled.view(n_eps, n), zero_gradient.view(n_eps, n),
                            None if iterates is None else iterates.view(len(iterates), *self.shape))
