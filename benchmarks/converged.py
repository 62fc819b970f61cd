"""Our converged evaluation against the reference AutoAttack (pyautoattack 0.2.0, a faithful port of the original)
on the same test digits of `triplet-pgd`, in one run: its standard version (APGD-CE, APGD-T, FAB-T, Square) on all
of them, its `plus` version (restarts, APGD-DLR, FAB, both targeted and not) on as many of the first ones as the
run affords, and ours, to convergence.

Prints each robust accuracy and time, ours stage by stage with its share of the time, and the digits each side
broke that the other did not. The targets: ours converged, at or below both references' robust accuracy on the
digits they share, in no more time than AutoAttack standard takes.

    pip install --no-deps pyautoattack==0.2.0       # the reference; a test and benchmark dependency only
    python benchmarks/converged.py [--digits 500] [--plus-digits 100] [--model triplet-pgd] [--batch 500] \
        [--budget 208000] [--save ROW_JSON] [--continue-from ROW_JSON]

The default budget is what `triplet-pgd`'s first 500 digits needed to converge (about 35 minutes of a 2-core CPU for
ours alone); `--budget 13000`, the evaluation's own default, stops after five rounds. `--continue-from` goes on from
a row `--save` wrote (same model and digits) instead of starting over, adding the time that row took.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from explorer import data, models
from explorer.evaluation import ensemble

CONVERGED_BUDGET = 208_000  # triplet-pgd's first 500 digits: round 9 (1,600 steps x 64 restarts) confirmed round 8


def reference(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, version: str,
              batch: int) -> tuple[torch.Tensor, float]:
    """Which digits AutoAttack `version` leaves standing, and its seconds."""
    from pyautoattack import AutoAttack

    start = time.perf_counter()
    attack = AutoAttack(model, norm="Linf", eps=0.3, version=version, seed=0, device="cpu")
    adversarial, _ = attack.run_standard_evaluation(x, y, batch_size=batch)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        robust = torch.cat([model(adversarial[i : i + 500]).argmax(1) == y[i : i + 500]
                            for i in range(0, len(y), 500)])
    return robust, seconds


def saved_row(path: Path, parser: argparse.ArgumentParser) -> dict:
    """The row `--save` wrote at `path`; a clear error for anything else."""
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        parser.error(f"--continue-from {path}: {exc}")
    if not isinstance(row, dict) or not {"seconds", "broken_by", "square", "beyond"} <= row.keys():
        parser.error(f"--continue-from {path}: not a row this benchmark's --save wrote")
    return row


def earlier_seconds(earlier: dict, ours: dict) -> float:
    """What the row gone on from cost, as a part of one run: when rounds were added, the Square sample and the
    past-eps test ran again after them, so the earlier ones count for nothing."""
    if len(ours["rounds"]) == len(earlier.get("rounds", [])):
        return earlier["seconds"]
    return earlier["seconds"] - (earlier["square"]["seconds"] or 0.0) - earlier["beyond"]["seconds"]


def compare(name: str, theirs: torch.Tensor, ours: torch.Tensor) -> None:
    n = len(theirs)
    print(f"  on the first {n} digits: {name} {theirs.double().mean():.2%}, ours {ours[:n].double().mean():.2%}; "
          f"only {name} broke {int((ours[:n] & ~theirs).sum())}, only ours broke {int((~ours[:n] & theirs).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=500)
    parser.add_argument("--plus-digits", type=int, default=100, help="digits for AutoAttack plus (0: skip it)")
    parser.add_argument("--model", default="triplet-pgd")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--budget", type=int, default=CONVERGED_BUDGET,
                        help="escalation gradients a digit may receive (the evaluation's --budget)")
    parser.add_argument("--save", type=Path, help="write our evaluation's row (every stage, every digit) here")
    parser.add_argument("--continue-from", type=Path, metavar="ROW_JSON",
                        help="a row --save wrote: its stages and rounds stand, the escalation goes on from them")
    args = parser.parse_args()

    model = models.load(args.model)
    images, labels = data.load_split("test")
    x, y = data.to_tensor(images[: args.digits]), torch.from_numpy(labels[: args.digits])
    print(f"{args.model}, first {args.digits} test digits, eps 0.3, {torch.get_num_threads()} threads", flush=True)

    earlier = saved_row(args.continue_from, parser) if args.continue_from else None
    start = time.perf_counter()
    try:
        ours = ensemble.evaluate(model, x, y, 0.3, batch_size=args.batch, budget=args.budget, earlier=earlier,
                                 progress=False)
    except ValueError as exc:
        if earlier is None:
            raise
        parser.error(f"--continue-from {args.continue_from}: {exc}")
    ours_seconds = time.perf_counter() - start + (earlier_seconds(earlier, ours) if earlier else 0.0)
    ours_robust = torch.tensor([code == ensemble.ROBUST for code in ours["broken_by"]])
    print(f"ours: {ours['robust_accuracy']:.2%} in {ours_seconds:.0f} s ({ours['convergence']['says']})", flush=True)
    if args.save:
        args.save.write_text(json.dumps({**ours, "seconds": round(ours_seconds, 1)}, indent=1), encoding="utf-8")
    standard_robust, standard_seconds = reference(model, x, y, "standard", args.batch)
    print(f"AutoAttack standard: {standard_robust.double().mean():.2%} in {standard_seconds:.0f} s", flush=True)
    plus = None
    if args.plus_digits:
        plus = reference(model, x[: args.plus_digits], y[: args.plus_digits], "plus", args.batch)

    print(f"\n{'':40s} {'digits':>6s} {'robust accuracy':>16s} {'seconds':>9s}")
    print(f"{'reference AutoAttack (standard)':40s} {args.digits:6d} {standard_robust.double().mean():16.2%} "
          f"{standard_seconds:9.0f}")
    if plus is not None:
        print(f"{'reference AutoAttack (plus)':40s} {args.plus_digits:6d} {plus[0].double().mean():16.2%} "
              f"{plus[1]:9.0f}")
    verdict = "converged" if ours["converged"] else "NOT converged"
    print(f"{'ours, to convergence (' + verdict + ')':40s} {args.digits:6d} {ours['robust_accuracy']:16.2%} "
          f"{ours_seconds:9.0f}")
    stages = [(part["attack"], part["broke"], part["seconds"]) for part in ours["components"]]
    stages += [(f"round {r['round']} ({r['steps']}x{r['restarts']})", r["broke"], r["seconds"])
               for r in ours["rounds"]]
    square = ours["square"]
    stages.append((f"square ({square['ran_on']} digits)", square["broke"], square["seconds"]))
    beyond = ours["beyond"]
    for stage, broke, seconds in stages:
        print(f"  {stage:22s} broke {broke:4d} {seconds:7.0f} s {seconds / ours_seconds:6.1%}")
    print(f"  {'past eps':22s} (below)    {beyond['seconds']:7.0f} s {beyond['seconds'] / ours_seconds:6.1%}")
    print(f"  past eps, of the {beyond['standing']} digits standing, one APGD-CE run breaks "
          + ", ".join(f"{broke} at {eps}" for eps, broke in zip(beyond["eps"], beyond["broke"], strict=True))
          + " (no verdict changes: how near the edge they sit)")
    compare("standard", standard_robust, ours_robust)
    if plus is not None:
        compare("plus", plus[0], ours_robust)
    print(f"time ratio (AutoAttack standard / ours): {standard_seconds / ours_seconds:.2f}")


if __name__ == "__main__":
    main()
