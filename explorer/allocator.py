"""Keep freed memory inside the process, so a long CPU evaluation does not page in its batches over and over.

glibc serves every block over 32 MiB with a fresh `mmap` and unmaps it on free. An attack step on a sweep batch
(250 digits at 26 eps) frees and reallocates several such activations, and each comes back as zero-filled pages
from the kernel: a third of the evaluation's CPU time went to the kernel before this. Raising the thresholds makes
glibc reuse the freed blocks. The cost is that the process keeps its peak memory until it exits, which suits a
command that runs one evaluation and exits, not the app's long-lived server.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt's parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEEP_BELOW = 1 << 30  # mallopt takes a C int: blocks larger than 1 GiB are still mapped and unmapped one by one
_NEVER = -1  # as M_TRIM_THRESHOLD: never hand the heap's free top back to the kernel


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for this process; whether it applied (False off glibc, where nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl) or none to load
        return False
    settings = ((_M_MMAP_THRESHOLD, _KEEP_BELOW), (_M_TRIM_THRESHOLD, _NEVER), (_M_TOP_PAD, _KEEP_BELOW))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
