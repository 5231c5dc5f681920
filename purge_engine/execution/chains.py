"""The unit every executor trains: a constituent's chain of slice steps, and the schedule that orders them.

A `ChainTask` names the work (role, constituent, which steps, the teachers it waits for) and is
small enough to send to another process. `Bench` turns tasks into `Chain`s in the process that
trains them: the one place where a role becomes its model, its step data, its loss and its learning
rate, and where a student method's soft labels are cached and their teacher forward passes counted.
`schedule` is the one order every executor follows: teachers first (every student's labels depend
on them), then each method's students.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from purge_engine.constituents import ConstituentJob, StepSpec, segments
from purge_engine.events import EventCallback, PhaseEvent
from purge_engine.losses import RoleLoss, role_loss, role_lr
from purge_engine.rundir import sidecar
from purge_engine.soft_labels import LabelCache
from purge_engine.training import Cost

StepData = Callable[[StepSpec], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


@dataclass(frozen=True)
class ChainTask:
    """Bring one constituent's chain up to date: all of it, or only steps [first, end) (`part`: a
    segment of a student chain, the steps before it current already). needs: the teachers whose chains
    must be trained before it starts (the teachers its steps' labels come from)."""

    role: str
    constituent: int
    part: tuple[int, int] | None = None
    needs: tuple[int, ...] = ()


@dataclass
class Chain:
    """A task made concrete in the process that trains it."""

    job: ConstituentJob
    new_model: Callable[[], nn.Module]
    step_data: StepData
    loss: RoleLoss
    lr: float
    part: tuple[int, int] | None = None

    @property
    def end(self) -> int:
        return len(self.job.steps) if self.part is None else self.part[1]


def schedule(plan, methods: Sequence[str], by_segment: bool = False) -> list[ChainTask]:
    """Every chain of the teachers, then of each method's students, in that order; by_segment: each
    student chain cut where its steps start to need a new teacher (constituents.segments), for an
    executor that starts a segment as soon as its teachers are done."""
    tasks = [ChainTask("teacher", i) for i in range(plan.n_teachers)]
    for method, k in itertools.product(methods, range(plan.n_students)):
        cuts = segments(plan, method, k)
        if by_segment:
            tasks += [ChainTask(method, k, (s.first, s.end), s.teachers) for s in cuts]
        else:
            tasks.append(ChainTask(method, k, None, cuts[-1].teachers if cuts else ()))
    return tasks


def by_role(tasks: Sequence[ChainTask]) -> Iterator[tuple[str, list[ChainTask]]]:
    """The tasks in runs of one role, in schedule order."""
    for role, group in itertools.groupby(tasks, key=lambda task: task.role):
        yield role, list(group)


def phase(role: str) -> PhaseEvent:
    """The event that announces a role's turn ("teachers", "students:<method>")."""
    return PhaseEvent("phase", "teachers" if role == "teacher" else f"students:{role}")


class Bench:
    """Makes Chains for one run in this process, with one soft-label cache per student method (what it
    computes is stamped with the request being served); `settle` charges each method its label forwards."""

    def __init__(self, run, on_event: EventCallback):
        self.run, self.on_event = run, on_event
        self.caches: dict[str, LabelCache] = {}

    def chain(self, task: ChainTask, job: ConstituentJob | None = None) -> Chain:
        """The task's Chain; job: another chain of steps than the plan's (check.py rebuilds with its own)."""
        run, role, c = self.run, task.role, task.constituent
        job = job or run.job(role, c)
        data = teacher_step_data(run) if role == "teacher" else \
            student_step_data(run, role, c, self.labels(role))
        return Chain(job, lambda: run.new_model(role, c), data, role_loss(role, run.config),
                     role_lr(role, run.config), task.part)

    def labels(self, method: str) -> LabelCache:
        if method not in self.caches:
            run = self.run
            self.caches[method] = LabelCache(run.store, run.teacher_for_labels, run.inputs, run.bundle.spec.n_classes,
                                             run.config.temperature, run.device, self.on_event,
                                             {sidecar.REQUEST_ID: run.request_id}, run.executor.path, run.switch)
        return self.caches[method]

    def settle(self, costs: dict[str, Cost]) -> dict[str, Cost]:
        """Add each method's teacher forward passes for labels (their seconds are inside its steps already)."""
        for method, cache in self.caches.items():
            costs.setdefault(method, Cost()).label_forwards += cache.label_forwards
        return costs


def teacher_step_data(run) -> StepData:
    """Inputs and (true labels,) of a teacher step."""
    def step_data(spec: StepSpec):
        return run.inputs(spec.ids), (run.bundle.train_y[run.bundle.rows(spec.ids)],)

    return step_data


def student_step_data(run, method: str, student_id: int, labels: LabelCache) -> StepData:
    """Inputs and (soft labels, true labels) of a student step, slice by slice in plan order."""
    plan, teacher_keys = run.plan, run.chains.teacher_keys

    def slice_labels(c: int, j: int) -> torch.Tensor:
        teachers = plan.labelling_teachers(method, student_id, c)
        return labels.get(method, student_id, c, j, teachers, tuple(teacher_keys[t] for t in teachers),
                          plan.student_shards[student_id][c][j])

    def step_data(spec: StepSpec):
        soft = [slice_labels(c, j) for c, j in plan.student_step_slices(student_id, spec.step)]
        return run.inputs(spec.ids), (torch.cat(soft), run.bundle.train_y[run.bundle.rows(spec.ids)])

    return step_data

