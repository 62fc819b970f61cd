"""Where a converged evaluation's rounds should spend their gradients: on the digits of `triplet-pgd` that only its
later rounds broke (rounds 4 to 7 of the committed 10,000-digit row, the tail that kept every doubling finding a
few), how many each way of spending about the same gradients a digit breaks.

- `diversified`: APGD-CE from output-diversified starts (ODI), as the rounds run it, as R runs of S steps;
- `neighbour`: APGD-CE started from the perturbation that APGD-CE found for the digit's nearest neighbour, by
  embedding, among the digits of its class that APGD-CE broke (of the first 2,000 test digits the tail leaves
  out), the k-th run from the k-th nearest: a start that already points the way a similar digit fell;
- `pgd`: plain PGD of small fixed steps (eps / 30), one run: no exploration at all.

Each run only attacks the digits the runs before left standing, as the rounds do.

    python benchmarks/tail_starts.py [--ways diversified:200:4,diversified:800:1,neighbour:200:4,neighbour:800:1]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from explorer import attacks, data, models
from explorer.attacks import odi
from explorer.attacks.apgd import apgd_restarts, logits_objective, project
from explorer.evaluation import results

EPS = 0.3
TAIL_ROUNDS = ("round 4", "round 5", "round 6", "round 7")
POOL_DIGITS = 2000


def tail_digits(row: dict) -> list[int]:
    """The digits a round from `TAIL_ROUNDS` broke first."""
    codes = {code for code, name in row["broken_by_codes"].items() if name.startswith(TAIL_ROUNDS)}
    return [index for index, code in enumerate(row["broken_by"]) if code in codes]


def neighbour_perturbations(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, pool_x: torch.Tensor,
                            pool_y: torch.Tensor, runs: int) -> torch.Tensor:
    """(runs, N, 1, 28, 28): for each digit, the APGD-CE perturbations of its `runs` nearest same-class neighbours
    (by embedding) among the pool digits APGD-CE broke."""
    found = attacks.run(model, pool_x, pool_y, "apgd-ce", EPS, seed=1)
    broken = found.fooled[0]
    clean, perturbation, labels = pool_x[broken], (found.adversarial[0] - pool_x)[broken], pool_y[broken]
    with torch.no_grad():
        pool_embedding, embedding = model.embed(clean), model.embed(x)
    chosen = []
    for digit in range(len(x)):
        same = (labels == y[digit]).nonzero().squeeze(1)
        distance = (pool_embedding[same] - embedding[digit]).norm(dim=1)
        chosen.append(same[distance.argsort()[:runs]])
    return perturbation[torch.stack(chosen).T]


def spend(way: str, steps: int, runs: int, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
          starts: torch.Tensor | None) -> torch.Tensor:
    """Which digits `runs` runs of `steps` steps break."""
    if way == "diversified":
        return attacks.run(model, x, y, "apgd-odi", EPS, steps=steps, restarts=runs, seed=0).fooled[0]
    if way == "pgd":
        return attacks.run(model, x, y, "pgd", EPS, steps=steps, step_size=EPS / 30, random_start=True,
                           restarts=runs, seed=0).fooled[0]
    run = itertools.count()
    eps = torch.full((len(x), 1, 1, 1), EPS)
    return apgd_restarts(logits_objective(model, y, "ce"), x, y, eps, steps=steps, restarts=runs,
                         generator=torch.Generator().manual_seed(0),
                         start=lambda rows: project(x[rows] + starts[next(run), rows], x[rows], eps[rows]))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ways", default="diversified:200:4,diversified:800:1,neighbour:200:4,neighbour:800:1,"
                                          "pgd:800:1", help="way:steps:runs, comma-separated")
    args = parser.parse_args()
    try:
        ways = [(way, int(steps), int(runs)) for way, steps, runs in (item.split(":") for item in args.ways.split(","))]
    except ValueError:
        parser.error(f"--ways takes way:steps:runs items, comma-separated, not {args.ways!r}")
    if unknown := {way for way, _, _ in ways} - {"diversified", "neighbour", "pgd"}:
        parser.error(f"unknown ways {sorted(unknown)}: choose from diversified, neighbour, pgd")
    model = models.load("triplet-pgd").eval()
    row = results.committed("converged")["models"]["triplet-pgd"]
    tail = tail_digits(row)
    images, labels = data.load_split("test")
    x_all, y_all = data.to_tensor(images), torch.from_numpy(labels).long()
    x, y = x_all[tail], y_all[tail]
    in_tail = set(tail)
    pool = [i for i in range(POOL_DIGITS) if i not in in_tail and row["broken_by"][i] != "c"]
    most_runs = max((runs for way, _, runs in ways if way == "neighbour"), default=0)
    starts = neighbour_perturbations(model, x, y, x_all[pool], y_all[pool], most_runs) if most_runs else None
    print(f"{len(tail)} digits of triplet-pgd broken first by {', '.join(TAIL_ROUNDS)} of the committed row")
    print("| way | steps x runs | gradients a digit, at most | broke | seconds |\n|---|---|---|---|---|")
    for way, steps, runs in ways:
        began = time.perf_counter()
        broken = spend(way, steps, runs, model, x, y, starts)
        gradients = runs * (steps + 1 + (odi.DIVERSIFYING_STEPS if way == "diversified" else 0))
        print(f"| {way} | {steps} x {runs} | {gradients} | {int(broken.sum())} of {len(tail)} | "
              f"{time.perf_counter() - began:.0f} |", flush=True)


if __name__ == "__main__":
    main()
