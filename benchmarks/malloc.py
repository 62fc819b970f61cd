"""What `explorer.runtime.keep_freed_memory` saves on one sweep batch, and what it costs in memory, in one run.

Each measurement is a fresh process (an allocator setting cannot be undone in-process): BIM from the paper preset
on the first 250 test digits at all 26 eps of the sweep grid, the shape of one `explorer evaluate --sweeps` batch,
once with glibc's defaults and once tuned, in turns. Ratio = default time / tuned time; the accuracies must agree.
Peak = the largest resident set of the process.

    python benchmarks/malloc.py [--digits 250] [--steps 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from explorer import attacks, data, models, runtime
from explorer.evaluation import sweeps
tuned = runtime.keep_freed_memory() if sys.argv[1] == "tuned" else False
model = models.load("triplet-pgd")
images, labels = data.load_split("test")
digits = int(sys.argv[2])
x, y = data.to_tensor(images[:digits]), __import__("torch").as_tensor(labels[:digits])
start = time.perf_counter()
result = attacks.run(model, x, y, "bim", sweeps.EPS_GRID, steps=int(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - start, "tuned": tuned,
                  "accuracy": 1 - result.fooled.float().mean().item(),
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def measure(mode: str, digits: int, steps: int) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD, mode, str(digits), str(steps)], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=250)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for _ in range(args.repeats):
        for mode, record in runs.items():
            record.append(measure(mode, args.digits, args.steps))
    if not all(run["tuned"] for run in runs["tuned"]):
        sys.exit("the tuning did not apply here (not glibc): nothing to compare")
    medians = {mode: statistics.median(run["seconds"] for run in record) for mode, record in runs.items()}
    peaks = {mode: max(run["peak_gb"] for run in record) for mode, record in runs.items()}
    accuracies = {run["accuracy"] for record in runs.values() for run in record}
    print(f"BIM-{args.steps}, {args.digits} digits x 26 eps, median of {args.repeats}, fresh processes in turns")
    print(f"  glibc defaults      {medians['default']:.1f} s, peak {peaks['default']:.1f} GB")
    print(f"  keep_freed_memory   {medians['tuned']:.1f} s, peak {peaks['tuned']:.1f} GB")
    print(f"  ratio (default / tuned) {medians['default'] / medians['tuned']:.2f}; "
          f"accuracy {'identical' if len(accuracies) == 1 else f'DIFFERS: {sorted(accuracies)}'}")


if __name__ == "__main__":
    main()
