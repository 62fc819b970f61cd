"""What lets one server serve a class: results computed once for every session that asks, heavy jobs one at a time
with the quick ones first."""

import threading
import time

import pytest

from explorer.web.shared_results import SharedResults
from explorer.web.turns import FIRST_LOOK, FULL, Turns


def test_thirty_callers_asking_at_once_share_one_computation():
    store = SharedResults(max_entries=4)
    calls, answers = [], []

    def slow_attack():
        calls.append(1)
        time.sleep(0.2)  # long enough for every caller to arrive while it runs
        return object()

    threads = [threading.Thread(target=lambda: answers.append(store.get("digit", slow_attack))) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and store.computed == 1 and store.hits == 29
    assert len({id(answer) for answer in answers}) == 1  # every session reads the same result


def test_the_least_recently_used_result_leaves_first():
    store = SharedResults(max_entries=2)
    store.get("a", lambda: 1)
    store.get("b", lambda: 2)
    store.get("a", lambda: 1)  # a is fresh again
    store.get("c", lambda: 3)
    assert "a" in store and "c" in store and "b" not in store


def test_a_failed_computation_reaches_its_waiters_and_the_next_caller_tries_again():
    store = SharedResults(max_entries=2)
    started, asking = threading.Event(), threading.Event()
    errors = []

    def failing():
        started.set()
        asking.wait()
        time.sleep(0.3)  # the waiter is inside `get` by now
        raise RuntimeError("out of memory")

    def waiter():
        started.wait()
        asking.set()
        try:
            store.get("digit", lambda: "never run: a computation is under way")
        except RuntimeError as error:
            errors.append(str(error))

    thread = threading.Thread(target=waiter)
    thread.start()
    with pytest.raises(RuntimeError):
        store.get("digit", failing)
    thread.join()
    assert errors == ["out of memory"]
    assert store.get("digit", lambda: "second try") == "second try"


def test_one_job_at_a_time_and_the_first_looks_go_ahead_of_whole_grids():
    turns = Turns()
    order, running, overlaps = [], [], []
    holding, queued = threading.Event(), threading.Event()

    def job(name: str, priority: int) -> None:
        with turns.turn(priority):
            overlaps.append(len(running))
            running.append(name)
            if name == "first in":
                holding.set()
                queued.wait()  # every other job queues up behind this one
            order.append(name)
            running.remove(name)

    threads = [threading.Thread(target=job, args=("first in", FULL))]
    threads[0].start()
    holding.wait()
    for queued_before, (name, priority) in enumerate((("grid 1", FULL), ("look 1", FIRST_LOOK), ("grid 2", FULL),
                                                      ("look 2", FIRST_LOOK))):
        threads.append(threading.Thread(target=job, args=(name, priority)))
        threads[-1].start()
        while turns.waiting == queued_before:  # arrival order within a priority is the order served
            time.sleep(0.001)
    queued.set()
    for thread in threads:
        thread.join()
    assert order == ["first in", "look 1", "look 2", "grid 1", "grid 2"]
    assert overlaps == [0] * 5
