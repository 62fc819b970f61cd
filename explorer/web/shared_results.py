"""Results computed once and read by everyone who asks: a class of 30 opening the same link costs one attack.

A bounded store (least recently used out first) in which each key is computed at most once at a time: callers that
ask for a key while it is being computed wait for that computation instead of starting their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

Value = TypeVar("Value")


class SharedResults(Generic[Value]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.computed = 0  # computations run; with `hits`, how much sharing saved
        self.hits = 0
        self._done: OrderedDict[Hashable, Value] = OrderedDict()
        self._running: dict[Hashable, Future] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._done

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The value of `key`: stored, being computed by another caller (wait for it), or computed here."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                self.hits += 1
                return self._done[key]
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = Future()
                owner = True
            else:
                owner = False
                self.hits += 1
        if not owner:
            return running.result()
        try:
            value = compute()
        except BaseException as error:  # every waiter hears of it; the next caller tries again
            with self._lock:
                del self._running[key]
            running.set_exception(error)
            raise
        with self._lock:
            self._done[key] = value
            self.computed += 1
            while len(self._done) > self.max_entries:
                self._done.popitem(last=False)
            del self._running[key]
        running.set_result(value)
        return value
