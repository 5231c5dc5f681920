"""Files without torch: the hashes that name content, reading JSON back, and the errors of a stored file
(DESIGN section 8). Writing is rundir/atomic.py's: one atomic write for everything a run stores.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np


class CheckpointError(RuntimeError):
    """A stored file cannot be used: missing, corrupt, truncated, or from another run."""


class RunDamaged(CheckpointError):
    """A file of a run directory is damaged and `check --repair` rebuilds it: the type clients branch on
    (the dashboard offers the repair), its sentence saying which file and the command."""


# -- hashing -------------------------------------------------------------------------
def hash_ids(ids: np.ndarray) -> str:
    """Order-sensitive hash of sample ids (the order decides which row each batch draws)."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:20]


def content_key(**parts) -> str:
    """20 hex digits naming a piece of content by everything that decides it."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MAX_JSON_BYTES = 256 << 20  # a run's largest JSON (a big plan) is a few MiB


def read_json(path: Path, what: str) -> dict:
    """A run directory's JSON file, read only if it is a regular file (never through a symbolic link,
    never a device or FIFO) of at most MAX_JSON_BYTES; CheckpointError naming the file otherwise."""
    try:
        return json.loads(_read_regular(Path(path), what))
    except FileNotFoundError:
        raise CheckpointError(f"{what}: {path} is missing") from None
    except OSError as err:  # a link, a directory where the file should be, no permission, ...
        if err.errno == errno.ELOOP:
            raise CheckpointError(f"{what}: {path} is a symbolic link; a run directory's files are never read "
                                  "through one") from None
        raise CheckpointError(f"{what}: {path} cannot be read ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{what}: {path} is not valid JSON ({err.msg if hasattr(err, 'msg') else err})") from None


def _read_regular(path: Path, what: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO must not block the open
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{what}: {path} is not a regular file (a device, FIFO or folder); "
                                  "a run directory holds plain files only")
        if info.st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{what}: {path} is {info.st_size:,} bytes, over the {MAX_JSON_BYTES:,} a run's "
                                  "JSON may be")
        return handle.read(MAX_JSON_BYTES + 1).decode()
