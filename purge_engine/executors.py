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

from purge_engine.config import EXECUTORS
from purge_engine.constituents import ConstituentJob, StepSpec
from purge_engine.events import EventCallback, PhaseEvent
from purge_engine.soft_labels import LabelCache
from purge_engine.training import Cost, student_loss, teacher_loss, train_constituent

# The execution path decides the bits (DESIGN section 6): the one-at-a-time loop gives the same
# parameters in this process and in a Ray worker, so both record the path "loop"; lanes would not.
LOOP_PATH = "loop"


class LocalExecutor:
    """Every chain in this process, one after another, with the run's thread count."""

    name = "local"
    path = LOOP_PATH
    workers = 1

    def train(self, run, methods: Sequence[str], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        costs = {"teacher": Cost()}
        on_event(PhaseEvent("phase", "teachers"))
        for i in range(run.config.n_teachers):
            costs["teacher"].add(train_chain(run, "teacher", i, on_event, should_stop))
        for method in methods:
            on_event(PhaseEvent("phase", f"students:{method}"))
            labels = label_cache(run, on_event)
            costs[method] = Cost()
            for k in range(run.config.n_students):
                costs[method].add(train_chain(run, method, k, on_event, should_stop, labels))
            # Labels are computed inside each step's data (its seconds hold them already): count the passes only.
            costs[method].label_forwards += labels.label_forwards
        return costs

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers}


def train_chain(run, role: str, constituent: int, on_event: EventCallback, should_stop: Callable[[], bool],
                labels: LabelCache | None = None, job: ConstituentJob | None = None,
                part: tuple[int, int] | None = None) -> Cost:
    """Bring one constituent's chain up to date; a student's label forwards are counted in `labels`.
    job: a chain other than the plan's whole one (check.py rebuilds a damaged run a step at a time);
    part: only steps [first, end) of it (a segment: constituents.segments)."""
    config, job = run.config, job or run.job(role, constituent)
    if role == "teacher":
        return train_constituent(job, run.store, lambda: run.new_teacher(constituent),
                                 teacher_step_data(run), teacher_loss, config.batch_size, config.teacher_lr,
                                 config.seed, run.device, on_event, should_stop, part)
    return train_constituent(job, run.store, lambda: run.new_student(constituent),
                             student_step_data(run, role, constituent, labels), student_loss(config.temperature,
                                                                                              config.alpha),
                             config.batch_size, config.student_lr, config.seed, run.device, on_event, should_stop,
                             part)


class AutoExecutor:
    """"auto": the executor is chosen when a run is given it (Run.executor): the run's own path when it
    has been trained (lanes with its recorded W, here or on Ray; else the loop), so its requests and
    verification stay on that path; a new run gets lanes on a GPU and the loop on a CPU, where lanes
    are measured slower to serve a forget request on both built-in layouts (bench_lanes.py)."""

    name = "auto"

    def describe(self) -> dict:
        return {"executor": self.name, "workers": 1}

    def resolve(self, run):
        recorded = run.store.read_environment()
        if recorded:  # lanes left to choose W take the recorded one (LanesExecutor.settle)
            return make_executor("lanes") if recorded.get("lanes") else LocalExecutor()
        return make_executor("lanes") if run.device.type == "cuda" else LocalExecutor()


def make_executor(name: str = "local", ray_address: str | None = None, workers: int | None = None,
                  lanes: int | None = None):
    """The executor a CLI flag or a dashboard choice names: "local" (default), "ray", "lanes" (W =
    `lanes`, None: chosen for the device; with "ray", W makes each task a lane group, None the loop) or
    "auto" (AutoExecutor: chosen per run). Ray is imported only when asked for."""
    if name == "local":
        return LocalExecutor()
    if name == "auto":
        return AutoExecutor()
    if name == "ray":
        from purge_engine.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, workers=workers, lanes=lanes)
    if name == "lanes":
        from purge_engine.lanes import LanesExecutor

        return LanesExecutor(lanes)
    raise ValueError(f"executor: got {name!r}, must be one of {', '.join(EXECUTORS)}")


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
