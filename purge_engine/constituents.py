"""Pure (no torch): the roles a run trains, and the content-key chain of every step of every constituent.

A role is the teacher ensemble or one student method (DESIGN section 2). A constituent's chain is
its slice steps in order; each step's key hashes the config fingerprint, the position, the sample
ids it trains on, its epochs, the keys of the soft labels behind a student's targets, and the key of
the step before (section 8). Keys are computed from the plan alone, once per plan (`Chains`), so an
unaffected checkpoint is reused by construction and a worker needs nothing but its chain to train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from purge_engine.config import PurgeConfig
from purge_engine.plan import METHODS, Plan
from purge_engine.rundir.files import content_key, hash_ids
from purge_engine.vocabulary import title


@dataclass(frozen=True)
class Role:
    name: str  # "teacher" or a method; names the checkpoint folder
    side: str  # "teacher" or "student": which shards of the plan it trains on
    title: str  # for people, in the ensemble's form (vocabulary.title)


ROLES: dict[str, Role] = {
    "teacher": Role("teacher", "teacher", title("teacher")),
    "purge": Role("purge", "student", title("purge")),
    "single_teacher": Role("single_teacher", "student", title("single_teacher")),
    "baseline": Role("baseline", "student", title("baseline")),
}


def side_of(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: got {role!r}, must be one of {', '.join(ROLES)}")
    return ROLES[role].side


def count(role: str, plan: Plan) -> int:
    """How many constituents a role has under a plan."""
    return plan.n_teachers if side_of(role) == "teacher" else plan.n_students


def check_methods(methods) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods: got {unknown}, must be among {', '.join(METHODS)}")


@dataclass(frozen=True)
class StepSpec:
    step: int
    ids: np.ndarray  # sample ids of the step's cumulative data, in slice order
    epochs: int
    key: str  # content key of the checkpoint this step produces
    label_keys: tuple[str, ...] = ()  # students: keys of the soft labels behind the targets


@dataclass(frozen=True)
class ConstituentJob:
    """All a worker needs to bring one constituent up to date: its chain and what to stamp in sidecars."""

    role: str  # "teacher" or a student method: names the checkpoint folder
    rng_role: str  # "teacher" or "student": every student method draws the same batch order
    constituent: int
    steps: tuple[StepSpec, ...]
    meta: dict = field(default_factory=dict)  # written into every sidecar (seed, fingerprints, environment)


def label_key(method: str, teacher_keys: tuple[str, ...], ids: np.ndarray, temperature: float) -> str:
    """Identity of one slice's labels under a method: its labelling teachers' keys, its ids and T."""
    return content_key(kind="soft-labels", method=method, teachers=list(teacher_keys), ids=hash_ids(ids),
                       temperature=temperature)


class Chains:
    """The key chain of every constituent of a plan, computed once and kept."""

    def __init__(self, config: PurgeConfig, plan: Plan):
        self.config, self.plan = config, plan
        self.fingerprint = config.fingerprint()
        self._steps: dict[tuple[str, int], tuple[StepSpec, ...]] = {}

    def steps(self, role: str, constituent: int) -> tuple[StepSpec, ...]:
        position = (role, constituent)
        if position not in self._steps:
            side_of(role)
            self._steps[position] = (self._teacher(constituent) if role == "teacher"
                                     else self._student(role, constituent))
        return self._steps[position]

    def job(self, role: str, constituent: int, meta: dict) -> ConstituentJob:
        return ConstituentJob(role, side_of(role), constituent, self.steps(role, constituent), meta)

    def final_key(self, role: str, constituent: int) -> str:
        return self.steps(role, constituent)[-1].key

    @cached_property
    def teacher_keys(self) -> tuple[str, ...]:
        """The key of each teacher's final checkpoint: its identity for the labels it gives."""
        return tuple(self.final_key("teacher", i) for i in range(self.plan.n_teachers))

    def slice_label_key(self, method: str, student_id: int, chunk_id: int, slice_id: int) -> str:
        teachers = self.plan.labelling_teachers(method, student_id, chunk_id)
        ids = self.plan.student_shards[student_id][chunk_id][slice_id]
        return label_key(method, tuple(self.teacher_keys[t] for t in teachers), ids, self.config.temperature)

    def _init_key(self, side: str, constituent: int) -> str:
        model = self.config.teacher_arch if side == "teacher" else self.config.student_arch
        return content_key(kind="init", role=side, constituent=constituent, seed=self.config.seed, model=model)

    def _teacher(self, teacher_id: int) -> tuple[StepSpec, ...]:
        plan, parent, steps = self.plan, self._init_key("teacher", teacher_id), []
        for m in range(plan.teacher_slices):
            ids, epochs = plan.teacher_step_data(teacher_id, m), plan.teacher_epochs[m]
            parent = content_key(kind="teacher", config=self.fingerprint, constituent=teacher_id, step=m,
                                 ids=hash_ids(ids), epochs=epochs, parent=parent)
            steps.append(StepSpec(m, ids, epochs, parent))
        return tuple(steps)

    def _student(self, method: str, student_id: int) -> tuple[StepSpec, ...]:
        plan, parent, steps = self.plan, self._init_key("student", student_id), []
        for m in range(plan.student_steps(student_id)):
            ids, epochs = plan.student_step_data(student_id, m), plan.student_epochs[student_id][m]
            labels = tuple(self.slice_label_key(method, student_id, c, j)
                           for c, j in plan.student_step_slices(student_id, m))
            parent = content_key(kind=method, config=self.fingerprint, constituent=student_id, step=m,
                                 ids=hash_ids(ids), epochs=epochs, labels=list(labels), parent=parent)
            steps.append(StepSpec(m, ids, epochs, parent, labels))
        return tuple(steps)


@dataclass(frozen=True)
class Segment:
    """A run of a student chain's steps [first, end) that needs no teacher beyond `teachers` (all the
    teachers its steps' labels come from, earlier segments' included): the unit a task farm schedules,
    so a student's first chunk trains as soon as its first teacher is done."""

    first: int
    end: int
    teachers: tuple[int, ...]


def segments(plan: Plan, method: str, student_id: int) -> tuple[Segment, ...]:
    """A student chain cut where its steps start to need a teacher no earlier step needed: PURGE and
    single-teacher at every chunk (chunk c brings its teacher), the baseline not at all (every
    teacher labels its first chunk already). Teachers emptied by forgetting label nothing and are no
    dependency."""
    cuts: list[Segment] = []
    needed: set[int] = set()
    for m in range(plan.student_steps(student_id)):
        chunk, _ = plan.chunk_and_slice(m)
        new = set(plan.labelling_teachers(method, student_id, chunk)) - needed
        if new or not cuts:
            needed |= new
            cuts.append(Segment(m, m + 1, tuple(sorted(needed))))
        else:
            cuts[-1] = Segment(cuts[-1].first, m + 1, cuts[-1].teachers)
    return tuple(cuts)
