"""Who attacks the batches of an evaluation: this process, one after another, or the workers of a Ray cluster (an
optional extra: pip install 'explorer[ray]'), all at once. Either way the driver keeps the content-addressed batch
store, so a batch is attacked once whoever attacks it, and the results are the same to the last digit.

A job is a call `function(shared, **job)`; `shared` (the model) is sent to each worker once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import torch

from explorer import attacks
from explorer.attacks import odi
from explorer.attacks.losses import per_digit_loss
from explorer.attacks.params import Attack

Job = dict[str, Any]


def attack_batch(model: torch.nn.Module, *, images: torch.Tensor, labels: torch.Tensor, attack: Attack,
                 eps: float | list[float], seed: int, screen: Attack | None = None,
                 already_fooled: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's outcome, the job every runner maps: which digits `attack` fooled at each eps, and which had an
    all-zero input gradient (bool (E, N) each, on the CPU). Batch b is seeded with its first digit's index.
    `screen`: a cheaper attack run first, `attack` then attacking only what it left standing."""
    screen_zero = None
    if screen is not None:
        screened = attacks.run(model, images, labels, screen, eps, seed=seed)
        already_fooled, screen_zero = screened.fooled, screened.zero_gradient
    result = attacks.run(model, images, labels, attack, eps, seed=seed, already_fooled=already_fooled)
    zero = result.zero_gradient if screen_zero is None else result.zero_gradient | screen_zero
    return result.fooled.cpu(), zero.cpu()


def escalation_batch(model: torch.nn.Module, *, images: torch.Tensor, labels: torch.Tensor, eps: float, seed: int,
                     steps: int, restarts: int, already_fooled: torch.Tensor) -> dict[str, torch.Tensor]:
    """One batch of a converged evaluation's escalation round: APGD-CE from output-diversified starts on the digits
    not `already_fooled` ((1, N) bool), its `restarts` spent by successive halving: one restart for every digit, one
    more for the half of the survivors nearest the boundary (the smallest margin, true logit minus the best other, at
    their best point), two more for the nearest quarter, four for the nearest eighth, ..., so only the nearest
    1/restarts get them all and a digit far from the boundary stops drawing budget (A3's adaptive allocation).
    Returns fooled and zero_gradient ((1, N) bool), each digit's margin at its best point (float, inf for digits
    fooled) and the gradient evaluations it was given (int)."""
    per_restart = steps + odi.DIVERSIFYING_STEPS + 1
    fooled = torch.zeros_like(already_fooled, device="cpu")
    zero = torch.zeros_like(fooled)
    margin = torch.full((len(images),), float("inf"))
    budget = torch.zeros(len(images), dtype=torch.int32)
    attacking, given, spent = ~already_fooled[0].cpu(), 1, 0
    while given and attacking.any():
        result = attacks.run(model, images, labels, "apgd-odi", eps, seed=seed + spent, steps=steps, restarts=given,
                             already_fooled=~attacking[None].to(images.device))
        fooled |= result.fooled.cpu() & attacking
        zero |= result.zero_gradient.cpu() & attacking
        budget += attacking * given * per_restart
        with torch.no_grad():
            reached = -per_digit_loss(model(result.adversarial[0]), labels.to(images.device), "margin").cpu()
        margin = torch.where(attacking, torch.minimum(margin, reached), margin)
        spent += given
        standing = attacking & ~fooled[0]
        attacking = standing & (margin <= margin[standing].median()) if standing.any() else standing
        given = min(spent, restarts - spent)
    return {"fooled": fooled, "zero_gradient": zero, "margin": margin.masked_fill(fooled[0], float("inf"))[None],
            "budget": budget[None]}


class Runner(Protocol):
    def map(self, function: Callable[..., Any], shared: Any, jobs: Sequence[Job]) -> Iterator[tuple[int, Any]]:
        """(index into `jobs`, result) for every job, in whatever order they finish."""
        ...


class LocalRunner:
    """Every job in this process, in order."""

    def map(self, function: Callable[..., Any], shared: Any, jobs: Sequence[Job]) -> Iterator[tuple[int, Any]]:
        for index, job in enumerate(jobs):
            yield index, function(shared, **job)


class RunnerError(RuntimeError):
    """Ray is missing or its cluster cannot be reached; the message says what to do."""


def _call(function: Callable[..., Any], shared: Any, job: Job) -> Any:
    return function(shared, **job)


class RayRunner:
    """Jobs as Ray tasks of `cpus_per_job` CPUs each, on the cluster at `address` ("auto": the one this machine has
    joined; None: a local cluster of `local_cpus` CPUs started here, for a laptop or a test)."""

    def __init__(self, address: str | None = None, *, cpus_per_job: int = 1, local_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RunnerError("evaluating on Ray needs the optional ray package: pip install 'explorer[ray]'") from exc
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address, num_cpus=local_cpus if address is None else None, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RunnerError(f"cannot reach the Ray cluster at {address!r} ({exc}): start one with "
                                  "`ray start --head`, or leave out the address for a local one") from exc
        self.task = ray.remote(num_cpus=cpus_per_job)(_call)

    @property
    def workers(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 0))

    def map(self, function: Callable[..., Any], shared: Any, jobs: Sequence[Job]) -> Iterator[tuple[int, Any]]:
        shared_ref = self.ray.put(shared)
        pending = {self.task.remote(function, shared_ref, job): index for index, job in enumerate(jobs)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), self.ray.get(ref)

    def shutdown(self) -> None:
        self.ray.shutdown()
