import subprocess
import sys

import pytest

# Frees a 64 MiB tensor and allocates a 48 MiB one, as an attack step frees and reallocates its activations, and
# counts the page faults of the second: each is a page the kernel had to hand over zero-filled again.
REALLOCATE = """
import resource, sys
import torch
from explorer import allocator
applied = allocator.keep_freed_memory() if sys.argv[1] == "tuned" else False
activations = torch.ones(16 << 20)
del activations
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
activations = torch.ones(12 << 20)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[bool, int]:
    applied, faults = subprocess.run([sys.executable, "-c", REALLOCATE, mode], capture_output=True, text=True,
                                     check=True, timeout=120).stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tunes glibc's allocator, Linux only")
def test_tuned_allocator_reuses_freed_memory_instead_of_faulting_it_in_again():
    applied, default_faults = page_faults("default")
    assert not applied and default_faults > 10_000  # 48 MiB is 12,288 pages: glibc mapped them afresh
    applied, tuned_faults = page_faults("tuned")
    assert applied and tuned_faults < 100
