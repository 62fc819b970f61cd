"""Heavy work one job at a time, the quick jobs first: how one server stays responsive to a class.

PyTorch already spreads each attack over every core, so jobs that run at once only slow each other down. Waiting
jobs are served in order of priority (a lower number first), and in order of arrival within a priority: a student
waiting for the first verdicts of a new digit (one eps) goes ahead of another's whole eps grid.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FIRST_LOOK, FULL = 0, 1  # the priorities the app uses


class Turns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiting: list[tuple[int, int, threading.Event]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        """Jobs queued behind the one running."""
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def turn(self, priority: int = FULL) -> Iterator[None]:
        """Hold the machine for one job, after every waiting job of a lower priority number."""
        with self._lock:
            if self._busy:
                ready = threading.Event()
                heapq.heappush(self._waiting, (priority, next(self._arrivals), ready))
            else:
                self._busy, ready = True, None
        if ready is not None:
            ready.wait()  # handed over by the job before, which left _busy set for us
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    heapq.heappop(self._waiting)[2].set()
                else:
                    self._busy = False
