"""Every random choice of a run derives from (seed, role, position) and nothing else.

Never the global RNG: a retrain from a checkpoint must draw exactly what a
from-scratch run draws at the same position (DESIGN section 6).
"""

from __future__ import annotations

import hashlib


def seed_for(seed: int, role: str, *position: int) -> int:
    """A 63-bit integer seed for one position, e.g. seed_for(0, "teacher", 3, 1, 0)."""
    text = ":".join([str(int(seed)), role, *(str(int(p)) for p in position)])
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generator_for(seed: int, role: str, *position: int):
    """A CPU torch.Generator seeded for (seed, role, *position)."""
    import torch  # deferred: plan.py uses seed_for without loading torch

    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed_for(seed, role, *position))
    return generator
