"""Typed progress events. The engine reports through a callback; the CLI prints them, the dashboard draws them.

Roles: "teacher", or a student method ("purge", "single_teacher", "baseline").
Step states, in the order a constituent's step can pass through them:
  reused   -- its checkpoint matches the plan: kept untouched
  restored -- the checkpoint a retrain starts from was loaded
  training -- the step is being trained now
  trained  -- the step was trained and checkpointed
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass


class Cancelled(RuntimeError):
    """Raised between steps when the caller's should_stop() says so; every finished step is checkpointed."""


@dataclass(frozen=True)
class StepEvent:
    kind: str  # reused | restored | training | trained
    role: str
    constituent: int
    step: int
    n_steps: int
    samples: int = 0  # samples in the step's cumulative data
    epochs: int = 0
    seconds: float = 0.0
    loss: float | None = None
    worker: str = ""  # where the step ran ("node:pid"); empty in the driver's own process

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LabelEvent:
    """Soft labels of one slice of a chunk computed (kind "labelled") or taken from the cache ("label-reused")."""

    kind: str
    method: str
    student_id: int
    chunk_id: int
    slice_id: int
    teacher_ids: tuple[int, ...]
    samples: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


FULL_RETRAIN = "full_retrain"  # PhaseEvent name: a forget job's from-scratch full retrain begins (after the request)


@dataclass(frozen=True)
class PhaseEvent:
    """A stage of a job starting or ending: kind "phase", name e.g. "teachers", "students:purge", "done".
    FULL_RETRAIN is the one that splits a job: the events after it (its own TotalEvent first) are the
    full retrain's, which progress.Progress folds apart from the request's."""

    kind: str
    name: str
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TotalEvent:
    """A job's first event (recipes.py): the sample-steps it will train, as the plan predicts them.
    counts_reused: a reused step counts toward the total (training: the total is the whole plan); a
    forget request's total is only what it retrains."""

    kind: str  # "total"
    sample_steps: int
    counts_reused: bool = False
    what: str = ""  # "train", "forget", "verify", ...

    def to_dict(self) -> dict:
        return asdict(self)


Event = StepEvent | LabelEvent | PhaseEvent | TotalEvent
EventCallback = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default callback: drop events."""


def worker_name() -> str:
    """Where this process runs, for people: "host:pid" (stamped in sidecars and StepEvent.worker)."""
    return f"{socket.gethostname()}:{os.getpid()}"
