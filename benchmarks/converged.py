"""Our converged evaluation against the reference AutoAttack (pyautoattack 0.2.0, a faithful port of the original;
its standard version: APGD-CE, APGD-T, FAB-T, Square) on the same test digits of `triplet-pgd`, in one run.

Prints both robust accuracies, where they disagree digit by digit, what each part cost and the time ratio
(reference / ours), for our ensemble alone and with its convergence check. The target: our robust accuracy equal
or lower, in at most half the time.

    pip install --no-deps pyautoattack==0.2.0       # the reference; a test and benchmark dependency only
    python benchmarks/converged.py [--digits 500] [--model triplet-pgd] [--batch 500]
"""

from __future__ import annotations

import argparse
import time

import torch

from explorer import data, models
from explorer.evaluation import ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=500)
    parser.add_argument("--model", default="triplet-pgd")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    from pyautoattack import AutoAttack

    model = models.load(args.model)
    images, labels = data.load_split("test")
    x, y = data.to_tensor(images[: args.digits]), torch.from_numpy(labels[: args.digits])
    print(f"{args.model}, first {args.digits} test digits, eps 0.3, {torch.get_num_threads()} threads", flush=True)

    start = time.perf_counter()
    ours = ensemble.evaluate(model, x, y, 0.3, batch_size=args.batch, progress=False)
    ours_seconds = time.perf_counter() - start
    check_seconds = ours["check"]["seconds"]

    start = time.perf_counter()
    reference = AutoAttack(model, norm="Linf", eps=0.3, version="standard", seed=0, device="cpu")
    adversarial, _ = reference.run_standard_evaluation(x, y, batch_size=args.batch)
    reference_seconds = time.perf_counter() - start
    with torch.no_grad():
        reference_robust = torch.cat([model(adversarial[i : i + 500]).argmax(1) == y[i : i + 500]
                                      for i in range(0, len(y), 500)])

    ours_robust = torch.tensor([code == ensemble.ROBUST for code in ours["broken_by"]])
    print(f"\n{'':32s} {'robust accuracy':>16s} {'seconds':>9s}")
    print(f"{'reference AutoAttack (standard)':32s} {reference_robust.double().mean():16.2%} {reference_seconds:9.0f}")
    print(f"{'ours, ensemble alone':32s} {ours['ensemble_accuracy']:16.2%} {ours_seconds - check_seconds:9.0f}")
    print(f"{'ours, with the convergence check':32s} {ours['robust_accuracy']:16.2%} {ours_seconds:9.0f}")
    for part in ours["components"]:
        print(f"  {part['attack']:10s} broke {part['broke']:4d}, {part['standing_after']:4d} left, "
              f"{part['seconds']:7.0f} s")
    print(f"  check ({ours['check']['attack']}, doubled) broke {ours['check']['broke']}, {check_seconds:.0f} s; "
          f"{'converged' if ours['converged'] else 'NOT converged'}")
    print(f"digits only the reference broke: {int((ours_robust & ~reference_robust).sum())}; "
          f"only ours: {int((~ours_robust & reference_robust).sum())}")
    print(f"time ratio (reference / ours): ensemble alone {reference_seconds / (ours_seconds - check_seconds):.2f}, "
          f"with the check {reference_seconds / ours_seconds:.2f}")


if __name__ == "__main__":
    main()
