"""The names of a run directory's files, formatted and parsed in one place (DESIGN section 8).

    <run>/config.json  plan.json  manifest.json  ledger.sqlite (+ ledger.head.json)  writer.lock
    <run>/checkpoints/<role>-<id>/step-<m>.safetensors + .json                       CheckpointName
    <run>/soft_labels/<method>-<student>/chunk-<l>-slice-<j>-teacher-<i>.safetensors + .json  LabelName
    <run>/outputs/<role>-<id>/<set>.safetensors                                      (outputs.py)
    <run>/scratch/<name>/                                    a verification's from-scratch reference run

Each name is a frozen dataclass that writes itself (`str()`, `.folder`, `.stem`) and reads the text it
wrote (`parse`), so no module splits a name on "-" by hand. "role-id" (ConstituentName) also keys the
ledger's and the reports' per-constituent records. The walks below are the one enumeration of the
checkpoint and soft-label files a plan asks for, in one order, for every module that visits them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from purge_engine.constituents import Chains, StepSpec, count

CONFIG_NAME = "config.json"
PLAN_NAME = "plan.json"
MANIFEST_NAME = "manifest.json"
LEDGER_NAME = "ledger.sqlite"
LOCK_NAME = "writer.lock"
CHECKPOINTS = "checkpoints"  # also the manifest's section of checkpoint records
SOFT_LABELS = "soft_labels"  # also the manifest's section of soft-label records
OUTPUTS = "outputs"
SCRATCH = "scratch"
TENSORS_SUFFIX = ".safetensors"
SIDECAR_SUFFIX = ".json"

_ROLE = r"([a-z_]+)-(\d+)"  # a role or method id has no "-": "teacher", "single_teacher", ...
_CONSTITUENT = re.compile(_ROLE)
_CHECKPOINT = re.compile(_ROLE + r"/step-(\d+)")
_LABEL = re.compile(_ROLE + r"/chunk-(\d+)-slice-(\d+)-teacher-(\d+)")


def _fields(pattern: re.Pattern, text, form: str) -> tuple[str, ...]:
    found = pattern.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"name: got {text!r}, must read {form}")
    return found.groups()


@dataclass(frozen=True)
class ConstituentName:
    """One constituent of a role: "teacher-3", "purge-1"."""

    role: str
    constituent: int

    def __str__(self) -> str:
        return f"{self.role}-{self.constituent}"

    @classmethod
    def parse(cls, text: str) -> ConstituentName:
        role, constituent = _fields(_CONSTITUENT, text, "<role>-<id>")
        return cls(role, int(constituent))


@dataclass(frozen=True)
class CheckpointName:
    """The checkpoint after step `step` of one constituent: "teacher-3/step-2"."""

    AREA: ClassVar[str] = CHECKPOINTS
    role: str
    constituent: int
    step: int

    @property
    def owner(self) -> ConstituentName:
        return ConstituentName(self.role, self.constituent)

    @property
    def folder(self) -> str:
        return str(self.owner)

    @property
    def stem(self) -> str:
        return f"step-{self.step}"

    def __str__(self) -> str:
        return f"{self.folder}/{self.stem}"

    @classmethod
    def parse(cls, text: str) -> CheckpointName:
        role, constituent, step = _fields(_CHECKPOINT, text, "<role>-<id>/step-<m>")
        return cls(role, int(constituent), int(step))


@dataclass(frozen=True)
class LabelName:
    """One teacher's softmax outputs over one student slice, as one method's labels use them:
    "purge-1/chunk-0-slice-2-teacher-3"."""

    AREA: ClassVar[str] = SOFT_LABELS
    method: str
    student: int
    chunk: int
    slice: int
    teacher: int

    @property
    def folder(self) -> str:
        return str(ConstituentName(self.method, self.student))

    @property
    def stem(self) -> str:
        return f"chunk-{self.chunk}-slice-{self.slice}-teacher-{self.teacher}"

    def __str__(self) -> str:
        return f"{self.folder}/{self.stem}"

    def ids(self, plan):
        """The sample ids of the slice it labels (an int64 array of the plan)."""
        return plan.student_shards[self.student][self.chunk][self.slice]

    @classmethod
    def parse(cls, text: str) -> LabelName:
        method, student, chunk, slice_id, teacher = _fields(
            _LABEL, text, "<method>-<student>/chunk-<l>-slice-<j>-teacher-<i>")
        return cls(method, int(student), int(chunk), int(slice_id), int(teacher))


StoredName = CheckpointName | LabelName


# -- the one walk over stored files ------------------------------------------------------------------
def checkpoint_walk(chains: Chains, roles: Sequence[str]) -> Iterator[tuple[CheckpointName, StepSpec]]:
    """(name, step spec) of every step the plan asks of the given roles: role by role, constituent by
    constituent, step by step."""
    for role in roles:
        for c in range(count(role, chains.plan)):
            for spec in chains.steps(role, c):
                yield CheckpointName(role, c, spec.step), spec


def label_walk(plan, methods: Sequence[str]) -> Iterator[LabelName]:
    """Every per-teacher soft-label file the plan asks of the given methods: method, student, chunk,
    labelling teacher (plan.labelling_teachers), slice."""
    for method in methods:
        for k in range(plan.n_students):
            for c in range(plan.n_chunks(k)):
                for t in plan.labelling_teachers(method, k, c):
                    for j in range(plan.student_slices):
                        yield LabelName(method, k, c, j, t)
