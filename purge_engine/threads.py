"""One torch thread count per process at a time (issue 17).

    with hold_threads(1, should_stop, on_wait):   # training: runs with exactly 1 thread
        ...
    with hold_threads(2, strict=False):           # evaluation: 2 threads unless another holder set a count
        ...

torch.set_num_threads is process-wide, and on a CPU the thread count decides how a reduction is
split, so it decides the bits. Two jobs of one process (two dashboard tabs, two Experiments on
threads) with different `threads` in their configs would otherwise change each other's count in
the middle of a chain: a checkpoint trained partly on 2 threads, recorded as trained on 1, that a
from-scratch reference on 1 thread does not reproduce.

A strict holder (training, repair) waits while another holder runs with another count, saying so,
and stops when should_stop() turns true. A lenient holder (evaluation, timing) never waits: it takes
its count when nobody holds one, else runs on the count held, which the outputs it records name
(checkpoints.environment reads torch.get_num_threads()). Holds nest in one thread with the same count.
A Ray worker is its own process: Run.apply_threads sets its count directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from purge_engine.events import Cancelled

POLL_S = 0.05

_changed = threading.Condition()
_held = {"count": 0, "holders": 0}  # the count every current holder runs with, and how many hold it
_mine = threading.local()  # the count this thread holds (0: none)


def held_count() -> int:
    """The thread count held in this process now (0 when nobody holds one)."""
    with _changed:
        return _held["count"] if _held["holders"] else 0


@contextmanager
def hold_threads(count: int, should_stop: Callable[[], bool] | None = None,
                 on_wait: Callable[[str], None] | None = None, strict: bool = True) -> Iterator[int]:
    """Run the block with torch's thread count fixed for the whole process; yields the count it runs with."""
    mine = getattr(_mine, "count", 0)
    if mine:  # nested in this thread: the count it holds already
        if strict and mine != count:
            raise ValueError(f"threads: this thread already runs with {mine} torch threads and cannot switch to "
                             f"{count} inside that")
        yield mine
        return
    with _changed:
        if strict and _held["holders"] and _held["count"] != count and on_wait is not None:
            on_wait(f"threads: another job in this process runs with {_held['count']} torch threads; "
                    f"waiting for it to finish before running with {count}")
        while strict and _held["holders"] and _held["count"] != count:
            if should_stop is not None and should_stop():
                raise Cancelled(f"cancelled while waiting for a job with {_held['count']} torch threads")
            _changed.wait(POLL_S)
        if not _held["holders"]:
            torch.set_num_threads(count)
            _held["count"] = count
        _held["holders"] += 1
        running = _held["count"]
    _mine.count = running
    try:
        yield running
    finally:
        _mine.count = 0
        with _changed:
            _held["holders"] -= 1
            _changed.notify_all()
