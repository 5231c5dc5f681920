"""What crashed writes leave in a run directory, and their removal while no live writer owns them."""

from __future__ import annotations

import shutil
from pathlib import Path

from purge_engine.rundir.atomic import TEMP_GLOB
from purge_engine.rundir.lock import writer_lock
from purge_engine.rundir.names import SCRATCH
from purge_engine.rundir.store import RunStore

# safetensors writes its own temp file beside the target (".tmp" and six random characters) and renames
# it onto atomic.py's temp file: a kill in between leaves that one instead.
SAFETENSORS_TEMP_GLOB = ".tmp??????"


def leftovers(store: RunStore) -> list[Path]:
    """Temp files of interrupted atomic writes (atomic.py, and safetensors' own inside them), and a
    verification's scratch run."""
    found = sorted(p for glob in (TEMP_GLOB, SAFETENSORS_TEMP_GLOB) for p in store.root.rglob(glob)
                   if p.is_file() and SCRATCH not in p.relative_to(store.root).parts)
    scratch = store.root / SCRATCH  # verify leaves it empty; what is inside is a dead verification's
    return found + (sorted(scratch.iterdir()) if scratch.is_dir() else [])


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def clean_leftovers(store: RunStore) -> list[str]:
    """Remove what crashed writes left, but only while holding the writer lock without waiting: a
    live writer (this machine or a Ray worker's driver) holds the lock for as long as it writes, and
    the kernel drops a dead process's flock at once, so the lock says exactly whether an owner lives.
    An age threshold would guess (a slow disk writing a big checkpoint looks dead). Nothing is taken
    or written when there is nothing to clean, so a clean run stays byte-identical."""
    if not store.root.is_dir() or not leftovers(store):
        return []
    with writer_lock(store, wait=False, holder="cleaning what a crash left") as acquired:
        if not acquired:
            return []  # a writer is alive: its temp files are its own
        found = leftovers(store)
        remove_paths(found)
        return [str(p.relative_to(store.root)) for p in found]
