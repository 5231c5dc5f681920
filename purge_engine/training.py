"""The one slice-step loop shared by teachers, PURGE students, single-teacher students and the baseline.

A constituent is a chain of slice steps (DESIGN section 4): step m trains on the cumulative data
of slices 0..m for the SISA number of epochs, then writes a checkpoint. Batches are drawn by a
seeded randperm over tensors already on the device (no DataLoader). The optimizer is reset at
each step, so a checkpoint needs only the weights to resume exactly (section 6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from purge_engine.constituents import ConstituentJob, StepSpec  # noqa: F401 (re-exported)
from purge_engine.events import Cancelled, EventCallback, StepEvent  # noqa: F401 (Cancelled re-exported)
from purge_engine.rundir import sidecar
from purge_engine.rundir.checkpoints import hash_ids, load_checkpoint, read_sidecar, save_checkpoint
from purge_engine.rundir.names import CheckpointName
from purge_engine.rundir.store import RunStore
from purge_engine.seeding import generator_for


@dataclass
class Cost:
    """Measured work: wall seconds, samples x epochs trained, teacher forward passes for labels."""

    seconds: float = 0.0
    sample_steps: int = 0
    label_forwards: int = 0
    steps_trained: int = 0

    def add(self, other: Cost) -> Cost:
        self.seconds += other.seconds
        self.sample_steps += other.sample_steps
        self.label_forwards += other.label_forwards
        self.steps_trained += other.steps_trained
        return self

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "sample_steps": self.sample_steps,
                "label_forwards": self.label_forwards, "steps_trained": self.steps_trained}


# -- one slice step -----------------------------------------------------------------------
def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    # The single-tensor Adam on every device: one fixed execution path (no fused kernels, section 6).
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=False, fused=False)


def train_slice_step(model: nn.Module, inputs: torch.Tensor, targets: tuple[torch.Tensor, ...], loss_fn,
                     epochs: int, batch_size: int, lr: float, rng_position: tuple) -> float | None:
    """Train `epochs` passes over (inputs, targets); batch order from generator_for(*rng_position, epoch).

    inputs: (n, C, H, W) on the model's device; targets: tensors indexed like inputs.
    Returns the mean loss of the last epoch, or None when the step has no data (an emptied slice).
    """
    n = inputs.shape[0]
    if n == 0:
        return None
    model.train()
    optimizer = make_optimizer(model, lr)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator_for(*rng_position, epoch)).to(inputs.device)
        total = torch.zeros((), device=inputs.device)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[batch]), *(t[batch] for t in targets))
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.numel()
    return float(total) / n


# -- a constituent's chain of steps ----------------------------------------------------------
def reusable_steps(store: RunStore, job: ConstituentJob, end: int | None = None) -> int:
    """How many leading steps already hold the checkpoints the plan asks for, trained on the job's
    execution path. Keys are chained (each includes its parent's), so the last matching step vouches
    for every step's data before it; the path is checked on every step stored, because it decides the
    bits and is not in the key (a chain is never continued on another path than its steps were trained on).
    end: look at steps before it only (a part of a chain: what comes after is not its to judge)."""
    path = sidecar.execution_path(job.meta)
    for m in reversed(range(len(job.steps) if end is None else end)):
        meta = read_sidecar(store.checkpoint_stem(job.role, job.constituent, m))
        if meta is not None and meta.get(sidecar.KEY) == job.steps[m].key:
            return m + 1 if all(_path_of(store, job, i) in (path, _ABSENT) for i in range(m + 1)) else 0
    return 0


_ABSENT = object()  # a step with no checkpoint (verify lends a reference only the final ones)


def _path_of(store: RunStore, job: ConstituentJob, step: int):
    meta = read_sidecar(store.checkpoint_stem(job.role, job.constituent, step))
    return _ABSENT if meta is None else sidecar.execution_path(meta)


def train_constituent(chain, store: RunStore, batch_size: int, seed: int, device: torch.device,
                      on_event: EventCallback, should_stop: Callable[[], bool]) -> Cost:
    """Bring one chain (chains.Chain) up to date with the plan: reuse matching checkpoints, restore
    the last one, retrain the rest step by step. Returns the measured cost of what was trained. A
    chain with a part (first, end) brings only steps [first, end) up to date, the steps before them
    being current already (a task farm's segment of a student chain); events name only its own steps."""
    cost, job = Cost(), chain.job
    n_steps = len(job.steps)
    first, end = chain.part or (0, n_steps)
    done = reusable_steps(store, job, end)
    for m in range(first, min(done, end)):
        on_event(StepEvent("reused", job.role, job.constituent, m, n_steps, job.steps[m].ids.size, job.steps[m].epochs))
    if done >= end:
        return cost
    model = chain.new_model().to(device)
    if done:
        restore_step(model, store, job, done - 1, device)
        if done - 1 >= first:  # an earlier part's last step was reported by the task that trained it
            on_event(StepEvent("restored", job.role, job.constituent, done - 1, n_steps))
    for spec in job.steps[done:end]:
        if should_stop():
            raise Cancelled(f"cancelled before {job.role} {job.constituent} step {spec.step}")
        cost.add(_train_and_save(model, chain, spec, store, batch_size, seed, on_event))
    return cost


def restore_step(model: nn.Module, store: RunStore, job: ConstituentJob, step: int, device: torch.device) -> None:
    name = CheckpointName(job.role, job.constituent, step)
    model.load_state_dict(load_checkpoint(store.stem(name), sidecar.identity(name, job.steps[step].key), device))


def _train_and_save(model, chain, spec: StepSpec, store: RunStore, batch_size: int, seed: int,
                    on_event: EventCallback) -> Cost:
    job = chain.job
    on_event(StepEvent("training", job.role, job.constituent, spec.step, len(job.steps), spec.ids.size, spec.epochs))
    start = time.perf_counter()
    inputs, targets = chain.step_data(spec)
    loss = train_slice_step(model, inputs, targets, chain.loss, spec.epochs, batch_size, chain.lr,
                            (seed, job.rng_role, job.constituent, spec.step))
    return save_step(job, spec, store, model.state_dict(), loss, start, on_event)


def save_step(job: ConstituentJob, spec: StepSpec, store: RunStore, state: dict[str, torch.Tensor],
              loss: float | None, start: float, on_event: EventCallback) -> Cost:
    """Write a trained step's checkpoint (its sidecar names the step, its data and its key) and report
    it; start: when the step began (time.perf_counter). Shared by the loop and the lanes."""
    name = CheckpointName(job.role, job.constituent, spec.step)
    meta = {**job.meta, **sidecar.identity(name, spec.key), sidecar.SAMPLES: int(spec.ids.size),
            sidecar.IDS_HASH: hash_ids(spec.ids), sidecar.EPOCHS: spec.epochs,
            sidecar.LABEL_KEYS: list(spec.label_keys), sidecar.LOSS: loss}
    save_checkpoint(store.stem(name), state, meta)
    seconds = time.perf_counter() - start
    on_event(StepEvent("trained", job.role, job.constituent, spec.step, len(job.steps), spec.ids.size, spec.epochs,
                       seconds, loss))
    return Cost(seconds=seconds, sample_steps=int(spec.ids.size) * spec.epochs, steps_trained=1)


# -- inference -------------------------------------------------------------------------------
@torch.inference_mode()
def predict_proba(model: nn.Module, inputs: torch.Tensor, temperature: float = 1.0,
                  batch_size: int = 1024) -> torch.Tensor:
    """Softmax outputs (n, classes) in eval() mode, in fixed-size batches."""
    model.eval()
    starts = range(0, inputs.shape[0], batch_size) or [0]  # an emptied chunk still gives (0, classes)
    return torch.cat([F.softmax(model(inputs[i:i + batch_size]) / temperature, dim=1) for i in starts])
