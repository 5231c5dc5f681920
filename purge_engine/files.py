"""Files without torch: atomic writes, JSON, and the hashes that name content (DESIGN section 8).

Everything a run stores is written to a temporary name in the same folder and moved into place
with os.replace, so a crash leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
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


# -- atomic writes -----------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{what}: {path} is missing") from None
    except OSError as err:  # a directory where the file should be, no permission, ...
        raise CheckpointError(f"{what}: {path} cannot be read ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{what}: {path} is not valid JSON ({err.msg if hasattr(err, 'msg') else err})") from None
