"""Our attacks against torchattacks 3.5.1 on the same model, digits and threads, in one run.

1. Speed per attack step: PGD-40 on one batch, both libraries (median of repeats). Ratio = theirs / ours.
2. A robust-accuracy evaluation, PGD-40 at eps 0.3 on the softmax model: ours drops digits once they are fooled,
   torchattacks attacks every digit for all 40 steps. Ratio of times, and both accuracies; then the same with our
   margin loss, which does not saturate the way cross-entropy does on a confident model; then with an FGSM screen
   first, so PGD only attacks the digits one gradient step did not already fool.

    python benchmarks/attacks.py [--digits 1000] [--batch 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchattacks

from explorer import attacks, data, models
from explorer.evaluation import evaluate


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def timed_pair(first, second, repeats: int) -> tuple[float, float]:
    """Median times of two functions run in turns, so a machine slowing down mid-run weighs on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, record in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            function()
            record.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = models.load("softmax")
    images, labels = data.load_split("test")
    x, y = data.to_tensor(images[: args.digits]), torch.from_numpy(labels[: args.digits])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, softmax model, eps 0.3")

    batch = (x[: args.batch], y[: args.batch])
    reference = torchattacks.PGD(model, eps=0.3, alpha=0.01, steps=40, random_start=True)
    theirs, ours = timed_pair(lambda: reference(*batch), lambda: attacks.attack(model, *batch, "pgd", 0.3),
                              args.repeats)
    print(f"PGD-40, batch {args.batch}: torchattacks {theirs:.2f} s, ours {ours:.2f} s "
          f"({args.batch * 40 / ours:.0f} digit-steps/s); speed ratio {theirs / ours:.2f}")

    # Without random start both libraries follow the same path, so ours (the first fooled iterate of each digit)
    # is fooled wherever theirs (the last iterate) is: equal or lower accuracy by construction.
    fixed_start = torchattacks.PGD(model, eps=0.3, alpha=0.01, steps=40, random_start=False)

    def torchattacks_accuracy() -> float:
        correct = 0
        for start in range(0, len(x), args.batch):
            xb, yb = x[start : start + args.batch], y[start : start + args.batch]
            adversarial = fixed_start(xb, yb)
            with torch.no_grad():
                correct += int((model(adversarial).argmax(1) == yb).sum())
        return correct / len(x)

    def our_accuracy(**params) -> float:
        return float(evaluate.robust_accuracy(model, x, y, "pgd", 0.3, batch_size=args.batch, progress=False,
                                              **params)[0])

    theirs, their_accuracy = timed(torchattacks_accuracy, 1)
    print(f"robust accuracy, PGD-40 (cross-entropy, no random start) on {len(x)} digits: "
          f"torchattacks {their_accuracy:.1%} in {theirs:.1f} s")
    ours, accuracy = timed(lambda: our_accuracy(random_start=False), 1)
    print(f"  ours, same attack, fooled digits dropped: {accuracy:.1%} in {ours:.1f} s; "
          f"speed ratio {theirs / ours:.2f}")
    ours, accuracy = timed(lambda: our_accuracy(random_start=False, loss="margin"), 1)
    print(f"  ours, margin loss, fooled digits dropped: {accuracy:.1%} in {ours:.1f} s; "
          f"speed ratio {theirs / ours:.2f}")
    ours, accuracy = timed(lambda: our_accuracy(random_start=False, loss="margin", screen="fgsm"), 1)
    print(f"  ours, margin loss, FGSM screen, fooled digits dropped: {accuracy:.1%} in {ours:.1f} s; "
          f"speed ratio {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
