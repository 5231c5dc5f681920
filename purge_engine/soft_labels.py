"""Soft labels: incremental multi-teacher (PURGE), single-teacher ablation, whole ensemble (baseline).

Section 4.5: chunk l of student k is labelled by the mean softmax (temperature T) of its first
l+1 mapped teachers; the single-teacher ablation uses teacher l alone; the baseline uses every
teacher. Each teacher's softmax outputs over each student slice are computed once, with the
teacher in eval() under inference_mode, and cached on disk under a key made of that teacher's
checkpoint key, the slice's sample ids and T. A slice's labels are the sum of its teachers' cached
outputs in fixed teacher order, divided by their count (bitwise stable). So a teacher change costs
that one teacher's forward passes over the slices it labels, for PURGE and the baseline alike, and a
student-side deletion costs the forward passes of the one slice that lost the sample. Every method
keeps its own cache, so each pays for its own labels and the comparison stays fair.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from purge_engine.constituents import label_key  # noqa: F401 (re-exported)
from purge_engine.events import EventCallback, LabelEvent
from purge_engine.plan import Plan
from purge_engine.rundir import sidecar
from purge_engine.rundir.checkpoints import content_key, hash_ids, load_checkpoint, read_sidecar, save_checkpoint
from purge_engine.rundir.names import LabelName
from purge_engine.rundir.store import RunStore
from purge_engine.training import predict_proba


def label_teachers(plan: Plan, method: str, student_id: int, chunk_id: int) -> tuple[int, ...]:
    """The teachers whose ensemble labels chunk `chunk_id` of student `student_id` under `method`."""
    return plan.labelling_teachers(method, student_id, chunk_id)


def outputs_key(teacher_key: str, ids: np.ndarray, temperature: float) -> str:
    """Identity of one teacher's softmax outputs over one slice."""
    return content_key(kind="teacher-outputs", teacher=teacher_key, ids=hash_ids(ids), temperature=temperature)


def mean_of(outputs: list[torch.Tensor], n: int, n_classes: int, device) -> torch.Tensor:
    """Mean of per-teacher softmax outputs (n, classes), summed in the given (teacher) order.
    With no teacher (all emptied by forgetting) the labels are uniform over n_classes."""
    if not outputs:
        return torch.full((n, n_classes), 1.0 / n_classes, device=device)
    total = outputs[0]
    for more in outputs[1:]:
        total = total + more
    return total / len(outputs)


@torch.inference_mode()
def ensemble_soft_labels(teachers: list[nn.Module], inputs: torch.Tensor, temperature: float,
                         n_classes: int | None = None) -> torch.Tensor:
    """Mean over teachers of softmax(logits / T): (n, classes), summed in teacher order."""
    outputs = [predict_proba(teacher, inputs, temperature) for teacher in teachers]
    return mean_of(outputs, inputs.shape[0], n_classes, inputs.device)


class LabelCache:
    """Per (method, student, chunk, slice, teacher): that teacher's softmax outputs, on disk, reused
    while their key holds and they came from a teacher trained on `path` (the execution path decides a
    teacher's bits and is not in its key). `get` returns a slice's labels, recomputing only the stale
    outputs. A file from before paths were recorded is trusted unless `strict` (a run being retrained
    on another path: its old labels came from teachers of the old one)."""

    def __init__(self, store: RunStore, load_teacher: Callable[[int], nn.Module],
                 take_inputs: Callable[[np.ndarray], torch.Tensor], n_classes: int, temperature: float,
                 device: torch.device, on_event: EventCallback, meta: dict | None = None, path: str | None = None,
                 strict: bool = False):
        self.store, self.load_teacher, self.take_inputs, self.n_classes = store, load_teacher, take_inputs, n_classes
        self.temperature, self.device, self.on_event = temperature, device, on_event
        self.meta = meta or {}  # written into every sidecar (e.g. the request it was computed for)
        self.path, self.strict = path, strict
        self.label_forwards = 0  # teacher forward passes (samples x teachers) spent computing labels
        self.seconds = 0.0

    def get(self, method: str, student_id: int, chunk_id: int, slice_id: int, teacher_ids: tuple[int, ...],
            teacher_keys: tuple[str, ...], ids: np.ndarray) -> torch.Tensor:
        """Labels (n, classes) of one slice; teacher_keys: the checkpoint key of each of teacher_ids."""
        position = (method, student_id, chunk_id, slice_id)
        start, computed = time.perf_counter(), []
        outputs = []
        for teacher_id, teacher_key in zip(teacher_ids, teacher_keys, strict=True):
            cached = self._cached(position, teacher_id, outputs_key(teacher_key, ids, self.temperature))
            if cached is None:
                cached = self._compute(position, teacher_id, teacher_key, ids)
                computed.append(teacher_id)
            outputs.append(cached)
        labels = mean_of(outputs, int(ids.size), self.n_classes, self.device)
        self._report(position, tuple(computed), int(ids.size), time.perf_counter() - start)
        return labels

    def _cached(self, position, teacher_id: int, key: str) -> torch.Tensor | None:
        stem = self.store.stem(LabelName(*position, teacher_id))
        meta = read_sidecar(stem)
        if meta is None or meta.get(sidecar.KEY) != key:
            return None
        if meta.get(sidecar.PATH, None if self.strict else self.path) != self.path:
            return None
        return load_checkpoint(stem, {sidecar.KEY: key}, self.device)["outputs"]

    def _compute(self, position, teacher_id: int, teacher_key: str, ids: np.ndarray) -> torch.Tensor:
        method, student_id, chunk_id, slice_id = position
        outputs = predict_proba(self.load_teacher(teacher_id), self.take_inputs(ids), self.temperature)
        meta = {**self.meta, sidecar.PATH: self.path, sidecar.KEY: outputs_key(teacher_key, ids, self.temperature),
                sidecar.METHOD: method, sidecar.STUDENT_ID: student_id, sidecar.CHUNK_ID: chunk_id,
                sidecar.SLICE_ID: slice_id, sidecar.TEACHER_ID: teacher_id, sidecar.TEACHER_KEY: teacher_key,
                sidecar.IDS_HASH: hash_ids(ids), sidecar.FORWARDS: int(ids.size)}
        save_checkpoint(self.store.stem(LabelName(*position, teacher_id)), {"outputs": outputs}, meta)
        self.label_forwards += int(ids.size)
        return outputs

    def _report(self, position, computed: tuple[int, ...], n: int, seconds: float) -> None:
        method, student_id, chunk_id, slice_id = position
        if computed:
            self.seconds += seconds
            self.on_event(LabelEvent("labelled", method, student_id, chunk_id, slice_id, computed, n, seconds))
        else:
            self.on_event(LabelEvent("label-reused", method, student_id, chunk_id, slice_id, (), n))
