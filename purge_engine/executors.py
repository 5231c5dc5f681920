"""Executors: how a run's constituent chains get trained (DESIGN section 3).

`Run.train` hands the run and the methods to its executor; the executor brings every constituent
up to date with the plan. `LocalExecutor` trains the chains one after another in this process:
teachers first (every student's labels depend on them), then each method's students. Other
executors (a Ray task farm, lanes on a GPU) sit behind the same `train(run, methods, on_event,
should_stop) -> {role: Cost}` and must produce the same bits where the recorded environment says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from purge_engine.constituents import StepSpec
from purge_engine.events import EventCallback, PhaseEvent
from purge_engine.soft_labels import LabelCache
from purge_engine.training import Cost, student_loss, teacher_loss, train_constituent


class LocalExecutor:
    """Every chain in this process, one after another, with the run's thread count."""

    name = "local"

    def train(self, run, methods: Sequence[str], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        costs = {"teacher": self.train_teachers(run, on_event, should_stop)}
        for method in methods:
            costs[method] = self.train_students(run, method, on_event, should_stop)
        return costs

    def train_teachers(self, run, on_event: EventCallback, should_stop: Callable[[], bool]) -> Cost:
        on_event(PhaseEvent("phase", "teachers"))
        config, cost = run.config, Cost()
        for i in range(config.n_teachers):
            cost.add(train_constituent(run.job("teacher", i), run.store, lambda i=i: run.new_teacher(i),
                                       teacher_step_data(run), teacher_loss, config.batch_size, config.teacher_lr,
                                       config.seed, run.device, on_event, should_stop))
        return cost

    def train_students(self, run, method: str, on_event: EventCallback, should_stop: Callable[[], bool]) -> Cost:
        on_event(PhaseEvent("phase", f"students:{method}"))
        config, cost = run.config, Cost()
        labels = label_cache(run, on_event)
        loss = student_loss(config.temperature, config.alpha)
        for k in range(config.n_students):
            cost.add(train_constituent(run.job(method, k), run.store, lambda k=k: run.new_student(k),
                                       student_step_data(run, method, k, labels), loss, config.batch_size,
                                       config.student_lr, config.seed, run.device, on_event, should_stop))
        cost.label_forwards += labels.label_forwards
        cost.seconds += labels.seconds
        return cost


def label_cache(run, on_event: EventCallback) -> LabelCache:
    """The run's per-teacher soft-label cache; what it computes is stamped with the request being served."""
    return LabelCache(run.store, run.teacher_for_labels, run.inputs, run.bundle.spec.n_classes,
                      run.config.temperature, run.device, on_event, {"request_id": run.request_id})


def teacher_step_data(run):
    """Inputs and (true labels,) of a teacher step."""
    def step_data(spec: StepSpec):
        return run.inputs(spec.ids), (run.bundle.train_y[run.bundle.rows(spec.ids)],)

    return step_data


def student_step_data(run, method: str, student_id: int, labels: LabelCache):
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
