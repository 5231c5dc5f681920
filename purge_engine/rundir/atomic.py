"""The one atomic write of a run directory: JSON, config, plan, sidecars and safetensors alike.

A file is written to a temporary name in its own folder (`.<name>.<random>.tmp`), flushed to disk
(fsync) and moved into place with os.replace, so a crash leaves the old file or the new one, never
half of either; a temp file a crash left is removed later (leftovers.py, matching TEMP_GLOB).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

TEMP_SUFFIX = ".tmp"
TEMP_GLOB = f".*{TEMP_SUFFIX}"  # what atomic_write leaves behind when its process dies mid-write
T = TypeVar("T")


def atomic_write(path: Path | str, write: Callable[[Path], T], durable: bool = True) -> T:
    """Write `path` whole or not at all: write(temp) fills a temporary file in path's folder, which is
    fsynced (unless not durable: a cache) and moved onto path. Returns what write returned."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    temp = Path(name)
    try:
        result = write(temp)
        if durable:
            _fsync(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return result


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda temp: temp.write_bytes(data))


def json_text(data) -> str:
    """How a run directory writes JSON: indented, keys sorted, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path | str, data) -> None:
    atomic_write_bytes(path, json_text(data).encode())
