"""The one atomic write of a run directory: JSON, config, plan, sidecars and safetensors alike.

A file is written to a temporary name in its own folder (`.<name>.<random>.tmp`), flushed to disk
(fsync) and moved into place with os.replace, so a crash leaves the old file or the new one, never
half of either; a temp file a crash left is removed later (leftovers.py, matching TEMP_GLOB).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

TEMP_SUFFIX = ".tmp"
TEMP_GLOB = f".*{TEMP_SUFFIX}"  # what atomic_write leaves behind when its process dies mid-write
T = TypeVar("T")


class DiskFull(OSError):
    """No space left where a run directory's file is written: the sentence names the folder, the space
    needed and the space free. The file is left as it was (the write is atomic), so nothing is lost."""

    def __str__(self) -> str:
        return self.strerror  # the sentence alone, without "[Errno 28]"


def atomic_write(path: Path | str, write: Callable[[Path], T], durable: bool = True, size: int | None = None) -> T:
    """Write `path` whole or not at all: write(temp) fills a temporary file in path's folder, which is
    fsynced (unless not durable: a cache) and moved onto path. Returns what write returned. size: the
    bytes it will write, checked against the free space first; a full disk met while writing (an OSError
    or a library's error saying ENOSPC) is DiskFull either way."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if size is not None and shutil.disk_usage(path.parent).free < size:
        raise _disk_full(path, size)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    temp = Path(name)
    try:
        result = write(temp)
        if durable:
            _fsync(temp)
        os.replace(temp, path)
    except BaseException as err:
        temp.unlink(missing_ok=True)
        if _no_space(err) and not isinstance(err, DiskFull):
            raise _disk_full(path, size) from None
        raise
    return result


def _no_space(err: BaseException) -> bool:
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left on device" in str(err) \
        or "os error 28" in str(err)


def _disk_full(path: Path, size: int | None) -> DiskFull:
    free = shutil.disk_usage(path.parent).free
    needed = "" if size is None else f"{size / 2**20:.1f} MiB needed, "
    return DiskFull(errno.ENOSPC, f"disk full: cannot write {path.name} in {path.parent} ({needed}"
                    f"{free / 2**20:.1f} MiB free); free some space and run the command again: every file "
                    "written so far is kept whole, and a journaled request is finished where it stopped")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda temp: temp.write_bytes(data), size=len(data))


def json_text(data) -> str:
    """How a run directory writes JSON: indented, keys sorted, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path | str, data) -> None:
    atomic_write_bytes(path, json_text(data).encode())
