import subprocess
import sys

import pytest

# Frees a 64 MiB tensor and allocates a 48 MiB one, as an attack step frees and reallocates its activations, and
# counts the page faults of the second: each is a page the kernel had to hand over zero-filled again. Then frees
# that one too and reports how much of it the process still holds after the trimming thread has had its turn.
REALLOCATE = """
import resource, sys, time
import torch
from explorer import runtime

def resident_mib():
    return int(open("/proc/self/statm", encoding="ascii").read().split()[1]) * resource.getpagesize() / 2**20

applied = runtime.keep_freed_memory(trim_every_s=0.2) if sys.argv[1] == "tuned" else False
activations = torch.ones(16 << 20)
del activations
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
activations = torch.ones(12 << 20)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
holding = resident_mib()
del activations
time.sleep(1.0)
print(applied, faults, holding - resident_mib())
"""


def reallocate(mode: str) -> tuple[bool, int, float]:
    applied, faults, released_mib = subprocess.run([sys.executable, "-c", REALLOCATE, mode], capture_output=True,
                                                   text=True, check=True, timeout=120).stdout.split()
    return applied == "True", int(faults), float(released_mib)


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tunes glibc's allocator, Linux only")


def test_tuned_allocator_reuses_freed_memory_instead_of_faulting_it_in_again():
    applied, default_faults, _ = reallocate("default")
    assert not applied and default_faults > 10_000  # 48 MiB is 12,288 pages: glibc mapped them afresh
    applied, tuned_faults, _ = reallocate("tuned")
    assert applied and tuned_faults < 100


def test_tuned_allocator_still_hands_freed_memory_back_to_the_system():
    applied, _, released_mib = reallocate("tuned")
    assert applied and released_mib > 40  # the freed 48 MiB left the process within a trimming period
