"""One process against Ray workers on the same evaluation, in one run: the same batches of the same digits, attacked
by this process (torch's threads over all cores) and by a local Ray cluster of one single-threaded worker a core.

Prints both times, the speed-up, Ray's start-up apart, and whether every batch's outcome is identical. Needs the
optional extra (pip install 'explorer[ray]').

    python benchmarks/ray_speedup.py [--digits 400] [--batch 50] [--model triplet-pgd] [--attack apgd-ce]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from explorer import data, models
from explorer.evaluation import evaluate
from explorer.evaluation.batch_store import BatchStore
from explorer.evaluation.runners import RayRunner


def timed_outcomes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str, batch: int,
                   store: BatchStore) -> tuple[evaluate.Outcome, float]:
    start = time.perf_counter()
    outcome = evaluate.outcomes(model, x, y, kind, 0.3, preset="strong", batch_size=batch, progress=False,
                                store=store)
    return outcome, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=400)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--model", default="triplet-pgd")
    parser.add_argument("--attack", default="apgd-ce")
    args = parser.parse_args()
    model = models.load(args.model)
    images, labels = data.load_split("test")
    x, y = data.to_tensor(images[: args.digits]), torch.from_numpy(labels[: args.digits])
    cores = os.cpu_count() or 1
    print(f"{args.model}, {args.attack}, first {args.digits} test digits in batches of {args.batch}, eps 0.3; "
          f"{cores} cores", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        alone, alone_seconds = timed_outcomes(model, x, y, args.attack, args.batch,
                                              BatchStore(Path(folder) / "alone"))
        began = time.perf_counter()
        runner = RayRunner(local_cpus=cores)
        start_up = time.perf_counter() - began
        workers = runner.workers
        try:
            on_ray, ray_seconds = timed_outcomes(model, x, y, args.attack, args.batch,
                                                 BatchStore(Path(folder) / "ray", runner))
        finally:
            runner.shutdown()
    same = torch.equal(alone.fooled, on_ray.fooled) and torch.equal(alone.zero_gradient, on_ray.zero_gradient)
    print(f"one process ({torch.get_num_threads()} threads): robust accuracy {float(alone.accuracy[0]):.2%}, "
          f"{alone_seconds:.1f} s")
    print(f"Ray, {workers} workers of 1 thread: robust accuracy "
          f"{float(on_ray.accuracy[0]):.2%}, {ray_seconds:.1f} s (+ {start_up:.1f} s to start the cluster)")
    print(f"speed-up {alone_seconds / ray_seconds:.2f}x ({alone_seconds / (ray_seconds + start_up):.2f}x with the "
          f"start-up); every batch's outcome identical: {same}")


if __name__ == "__main__":
    main()
