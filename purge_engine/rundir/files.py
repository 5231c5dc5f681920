"""Files without torch: the hashes that name content, reading JSON back, and the errors of a stored file
(DESIGN section 8). Writing is rundir/atomic.py's: one atomic write for everything a run stores.
"""

from __future__ import annotations

import hashlib
import json
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


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{what}: {path} is missing") from None
    except OSError as err:  # a directory where the file should be, no permission, ...
        raise CheckpointError(f"{what}: {path} cannot be read ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{what}: {path} is not valid JSON ({err.msg if hasattr(err, 'msg') else err})") from None
