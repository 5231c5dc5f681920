"""Seconds a job will take, from throughput measured on this machine, and a live estimate while it runs.

A job's size is exact before it starts (`plan.predicted_cost`: sample-steps and label forward passes).
Its seconds are that size over a throughput measured here, never a guess: `calibrate` times a fresh
teacher model and a fresh student model training on the run's own first samples (after one warm-up
batch) and a teacher's soft-label forward passes, with the run's batch size, threads and device.
While a job runs, `LiveEta` re-estimates from the job's own trained steps.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from purge_engine.constituents import side_of
from purge_engine.losses import role_loss, role_lr
from purge_engine.plan import METHODS, full_scope, make_plan, training_cost
from purge_engine.run import Run
from purge_engine.rundir.checkpoints import read_sidecar, save_checkpoint
from purge_engine.rundir.store import RunStore
from purge_engine.training import predict_proba, train_slice_step

CALIBRATION_SAMPLES = 256  # of the plan's first slice: long enough to time, short enough to run before a job
CALIBRATION_EPOCHS = 2


@dataclass(frozen=True)
class Rates:
    """Throughput measured on this machine: sample-steps (samples x epochs) per second of training,
    per side, and teacher forward passes per second of soft labelling."""

    teacher: float
    student: float
    label: float
    step: float  # fixed seconds of one slice step besides training: building the model, writing its checkpoint
    seconds: float  # what measuring them took

    def to_dict(self) -> dict:
        return asdict(self)


def training_seconds(config, bundle, scratch: Path) -> float:
    """Seconds training `config`'s whole layout on `bundle` should take here: its exact size (training_cost,
    job_steps) over throughput measured now on this machine (calibrate: a fraction of a second). A probe
    Run over a `scratch` directory that it never writes to."""
    plan = make_plan(config, bundle)
    probe = Run(RunStore(scratch), config, plan, bundle)
    return predicted_seconds(training_cost(plan), calibrate(probe), ["teacher", *METHODS], job_steps(plan))


def calibrate(run) -> Rates:
    """Time one real slice step of each side, as the training loop runs it (the run's threads, a fresh
    model, the plan's own first slice, at most CALIBRATION_SAMPLES of it), and one labelling pass."""
    with run.threads_held(strict=False):
        return _calibrate(run, time.perf_counter())


def _calibrate(run, start: float) -> Rates:
    batch = run.config.batch_size
    teacher_ids = run.plan.teacher_step_data(0, 0)[:CALIBRATION_SAMPLES]
    inputs, labels = run.inputs(teacher_ids), run.bundle.train_y[run.bundle.rows(teacher_ids)]
    # The first backward pass in a process pays torch's one-time set-up (about a second on a CPU): paid
    # here, on two samples, so that it is not charged to every step the rate prices.
    config = run.config
    train_slice_step(run.new_model("teacher", 0).to(run.device), inputs[:2], (labels[:2],),
                     role_loss("teacher", config), 1, batch, role_lr("teacher", config), (0, "calibration", 1))
    teacher = _rate(run.new_model("teacher", 0).to(run.device), inputs, (labels,), role_loss("teacher", config), batch,
                    role_lr("teacher", config))
    student_ids = run.plan.student_step_data(0, 0)[:CALIBRATION_SAMPLES]
    s_inputs, s_labels = run.inputs(student_ids), run.bundle.train_y[run.bundle.rows(student_ids)]
    soft = torch.full((s_inputs.shape[0], run.bundle.spec.n_classes), 1.0 / run.bundle.spec.n_classes,
                      device=s_inputs.device)
    student = _rate(run.new_model("purge", 0).to(run.device), s_inputs, (soft, s_labels),
                    role_loss("purge", config), batch, role_lr("purge", config))
    model = run.new_model("teacher", 0).to(run.device)
    clock = time.perf_counter()
    predict_proba(model, s_inputs, run.config.temperature)
    label = s_inputs.shape[0] / max(time.perf_counter() - clock, 1e-9)
    return Rates(teacher, student, label, _step_seconds(run), time.perf_counter() - start)


def _step_seconds(run) -> float:
    """A step's fixed cost: a fresh model laid out, its checkpoint written and its sidecar read back."""
    with tempfile.TemporaryDirectory() as scratch:
        clock = time.perf_counter()
        model = run.new_model("teacher", 0).to(run.device)
        stem = Path(scratch) / "step-0"
        save_checkpoint(stem, model.state_dict(), {"key": "calibration"})
        read_sidecar(stem)
        return time.perf_counter() - clock


def _rate(model, inputs, targets, loss_fn, batch_size: int, lr: float) -> float:
    # Cold, as each step of the loop is (a fresh optimizer; a fresh model for a chain's first step).
    clock = time.perf_counter()
    train_slice_step(model, inputs, targets, loss_fn, CALIBRATION_EPOCHS, batch_size, lr, (0, "calibration", 0))
    return inputs.shape[0] * CALIBRATION_EPOCHS / max(time.perf_counter() - clock, 1e-9)


def predicted_seconds(cost: dict, rates: Rates, roles, steps: dict[str, int] | None = None) -> float:
    """Seconds of training and labelling `roles` (keys of a `plan.predicted_cost` / `training_cost`),
    plus each role's fixed cost per slice step when `steps` (role -> steps trained, `job_steps`) is given.
    A full retrain is priced at the teachers' rate (it trains teachers and students alike)."""
    total = 0.0
    for role in roles:
        side_rate = rates.teacher if role == "full_retrain" or side_of(role) == "teacher" else rates.student
        total += cost[role]["sample_steps"] / side_rate + cost[role].get("label_forwards", 0) / rates.label
        total += (steps or {}).get(role, 0) * rates.step
    return total


def job_steps(plan, scope=None) -> dict[str, int]:
    """Slice steps each role trains: the whole plan (scope None) or what a RetrainScope retrains."""

    scope = scope or full_scope(plan)
    steps = {"teacher": sum(plan.teacher_slices - s for s in scope.teachers.values())}
    for method in METHODS:
        steps[method] = sum(plan.student_steps(k) - s for k, s in scope.students[method].items())
    everything = full_scope(plan)
    steps["full_retrain"] = plan.n_teachers * plan.teacher_slices + sum(
        plan.student_steps(k) for k in everything.students["purge"])
    return steps


