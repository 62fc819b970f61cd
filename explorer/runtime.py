"""How a process runs: which device, under what name, at what float32 precision, with which allocator settings.
Everything here that changes global state is called at an entry point (an `explorer` command), never deep inside a
library call, so a notebook that imports the library keeps its own settings.

`keep_freed_memory`: keep freed memory inside the process, so a long CPU evaluation does not page in its batches
over and over. glibc serves every block over 32 MiB with a fresh `mmap` and unmaps it on free. An attack step on a
sweep batch (250 digits at 26 eps) frees and reallocates several such activations, and each comes back as
zero-filled pages from the kernel: a third of the evaluation's CPU time went to the kernel before this. Raising the
thresholds makes glibc reuse the freed blocks. Left at that, the heap fragments (early stopping shrinks the attacked
batch at every step, so no two steps ask for the same sizes) and a 2.5-hour evaluation grew to 17 GB; so a
background thread hands the free pages back every minute, which costs one round of page faults a minute instead of
one a step.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
import time

import torch

# mallopt's parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEEP_BELOW = 1 << 30  # mallopt takes a C int: blocks larger than 1 GiB are still mapped and unmapped one by one
_NEVER = -1  # as M_TRIM_THRESHOLD: free() never hands the heap's top back; the trimming thread does it


def keep_freed_memory(trim_every_s: float = 60.0) -> bool:
    """Tune glibc's allocator for this process; whether it applied (False off glibc, where nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # another C library (musl) or none to load
        return False
    settings = ((_M_MMAP_THRESHOLD, _KEEP_BELOW), (_M_TRIM_THRESHOLD, _NEVER), (_M_TOP_PAD, _KEEP_BELOW))
    if not all(mallopt(parameter, value) == 1 for parameter, value in settings):
        return False

    def trim_forever() -> None:
        while True:
            time.sleep(trim_every_s)
            malloc_trim(0)  # returns every free page of every arena, not only the heap's top

    threading.Thread(target=trim_forever, name="malloc-trim", daemon=True).start()
    return True


def pick_device(device: str) -> torch.device:
    """'auto' (CUDA when there is one), 'cpu' or 'cuda'."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def full_precision() -> None:
    """TF32 convolutions round differently from the CPU and flip a few boundary digits: evaluations turn it off."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def float32_mode(device: torch.device) -> str:
    """What a result records about the precision it was computed at (TF32 exists on CUDA only)."""
    tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
    return "TF32 allowed" if device.type == "cuda" and tf32 else "full (no TF32)"


def autotune_convolutions() -> None:
    """cuDNN tries the convolution algorithms once per shape and keeps the fastest: training's shapes repeat."""
    torch.backends.cudnn.benchmark = True
