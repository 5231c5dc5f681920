"""One writer per run (DESIGN section 5): a forget request, training, a verification or a repair
waits for the one before it; readers (evaluate, check) share the lock but never hold it beside a writer.

    <run>/writer.lock   an flock; while a writer holds it, the file says what that writer is
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from purge_engine.events import Cancelled
from purge_engine.rundir.ledger import Ledger, LedgerError
from purge_engine.rundir.store import RunStore

LOCK_TIMEOUT_S = 600.0  # how long train, evaluate, verify and forget wait for another writer by default
LOCK_POLL_S = 0.1


class RunBusy(ValueError):
    """Another writer (a forget request, training or a verification) held the run past the wait allowed."""


_held = threading.local()  # run root -> [depth, shared] of the locks this thread holds


def _holds() -> dict:
    if not hasattr(_held, "runs"):
        _held.runs = {}
    return _held.runs


def holds_writer_lock(store: RunStore) -> bool:
    """True when this thread already holds the run's lock (an inner train inside a forget request)."""
    return str(store.root.resolve()) in _holds()


@contextmanager
def writer_lock(store: RunStore, wait: bool = True, timeout: float | None = None, holder: str = "a writer",
                on_wait: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
                shared: bool = False):
    """Hold the run's writer lock (an flock on <run>/writer.lock). Re-entrant within a
    thread. With wait=False, yields False at once when another writer holds it; otherwise waits (on_wait
    gets one sentence saying for what) up to `timeout` seconds (None: for ever) and then raises RunBusy
    naming what holds it. shared: a reader (evaluate) that many may hold at once, but never beside a
    writer. `holder` is written into the lock file while it is held (emptied after), so a waiter can say
    what it waits for."""
    key, held = str(store.root.resolve()), _holds()
    if key in held:
        if held[key][1] and not shared:
            raise RuntimeError(f"run: {store.root}: a writer lock was asked for while holding a reader's")
        held[key][0] += 1
        try:
            yield True
        finally:
            held[key][0] -= 1
        return
    store.root.mkdir(parents=True, exist_ok=True)
    with _open_lock(store.lock_path) as handle:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not _acquire(handle, mode, store, wait, timeout, on_wait, should_stop):
            yield False
            return
        held[key] = [1, shared]
        try:
            if not shared:
                handle.seek(0)
                handle.truncate()
                handle.write(holder)
                handle.flush()
            yield True
        finally:
            held.pop(key, None)
            if not shared:
                handle.seek(0)
                handle.truncate()  # idle, the lock file is empty again
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_lock(path: Path):
    """The lock file opened for reading and writing, created when absent, never through a symbolic link
    (the holder's name written into it would truncate the link's target)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"run: {path} is a symbolic link; a run directory opens nothing through a link "
                             "(remove it: the next writer makes the lock file again)") from None
        raise
    return os.fdopen(fd, "r+")


def _try_lock(handle, mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _acquire(handle, mode, store, wait, timeout, on_wait, should_stop) -> bool:
    if _try_lock(handle, mode):
        return True
    if not wait:
        return False
    limit = "" if timeout is None else f" (up to {timeout:g} s)"
    (on_wait or (lambda _: None))(f"run: {busy_text(store)}; waiting for it to finish{limit}")
    deadline = None if timeout is None else time.monotonic() + timeout
    while not _try_lock(handle, mode):
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled while waiting: {busy_text(store)}")
        if deadline is not None and time.monotonic() >= deadline:
            raise RunBusy(f"run: {busy_text(store)} in {store.root} (waited {timeout:g} s for it); "
                          "try again when it is done")
        time.sleep(LOCK_POLL_S)
    return True


def busy_text(store: RunStore) -> str:
    """What holds the run's lock, as a sentence's subject: "request 3 is in progress" for a forget
    request (the ledger's journaled, unfinished one), else what the holder wrote ("training ...")."""
    try:
        pending = Ledger(store.ledger_path).pending()
    except LedgerError:
        pending = []
    if pending:
        return f"request {pending[-1]} is in progress"
    try:
        what = "" if store.lock_path.is_symlink() else store.lock_path.read_text(errors="replace").strip()[:200]
    except OSError:
        what = ""
    return f"{what or 'another writer'} is in progress"


def run_is_busy(store: RunStore) -> str | None:
    """busy_text when another thread or process holds the run's lock now; None when it is free
    (the dashboard asks, to show a request another process serves as in progress)."""
    path = store.lock_path
    if path.is_symlink() or not path.is_file() or holds_writer_lock(store):
        return None  # a linked lock file is never opened: the next writer refuses it with a sentence
    with _open_lock(path) as handle:
        if _try_lock(handle, fcntl.LOCK_SH):
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    return busy_text(store)
