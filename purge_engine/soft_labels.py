"""Soft labels: incremental multi-teacher (PURGE), single-teacher ablation, whole ensemble (baseline).

Section 4.5: chunk l of student k is labelled by the mean softmax (temperature T) of its first
l+1 mapped teachers; the single-teacher ablation uses teacher l alone; the baseline uses every
teacher. Labels are computed once per slice of a chunk, with the teachers in eval() under
inference_mode, and cached on disk under a key made of the teachers' checkpoint keys and the
slice's sample ids: a teacher change recomputes only the chunks it feeds, and a student-side
deletion only the slice that lost the sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from purge_engine.checkpoints import content_key, hash_ids, load_checkpoint, read_sidecar, save_checkpoint
from purge_engine.events import EventCallback, LabelEvent
from purge_engine.plan import Plan
from purge_engine.store import RunStore
from purge_engine.training import predict_proba


def label_teachers(plan: Plan, method: str, student_id: int, chunk_id: int) -> tuple[int, ...]:
    """The teachers whose ensemble labels chunk `chunk_id` of student `student_id` under `method`."""
    return plan.labelling_teachers(method, student_id, chunk_id)


def label_key(method: str, teacher_keys: tuple[str, ...], ids: np.ndarray, temperature: float) -> str:
    return content_key(kind="soft-labels", method=method, teachers=list(teacher_keys), ids=hash_ids(ids),
                       temperature=temperature)


@torch.inference_mode()
def ensemble_soft_labels(teachers: list[nn.Module], inputs: torch.Tensor, temperature: float,
                         n_classes: int | None = None) -> torch.Tensor:
    """Mean over teachers of softmax(logits / T): (n, classes). Summed in teacher order.
    With no teacher (all emptied by forgetting) the labels are uniform over n_classes."""
    if not teachers:
        return torch.full((inputs.shape[0], n_classes), 1.0 / n_classes, device=inputs.device)
    total = predict_proba(teachers[0], inputs, temperature)
    for teacher in teachers[1:]:
        total = total + predict_proba(teacher, inputs, temperature)
    return total / len(teachers)


class LabelCache:
    """Soft labels per (method, student, chunk, slice), on disk, reused while their key holds."""

    def __init__(self, store: RunStore, load_teacher: Callable[[int], nn.Module], inputs: torch.Tensor,
                 n_classes: int, temperature: float, device: torch.device, on_event: EventCallback):
        self.store, self.load_teacher, self.inputs, self.n_classes = store, load_teacher, inputs, n_classes
        self.temperature, self.device, self.on_event = temperature, device, on_event
        self.label_forwards = 0  # teacher forward passes (samples x teachers) spent computing labels
        self.seconds = 0.0

    def get(self, method: str, student_id: int, chunk_id: int, slice_id: int, teacher_ids: tuple[int, ...],
            key: str, ids: np.ndarray) -> torch.Tensor:
        stem = self.store.labels_stem(method, student_id, chunk_id, slice_id)
        meta = read_sidecar(stem)
        if meta is not None and meta.get("key") == key:
            labels = load_checkpoint(stem, {"key": key}, self.device)["labels"]
            self.on_event(LabelEvent("label-reused", method, student_id, chunk_id, slice_id, teacher_ids,
                                     int(ids.size)))
            return labels
        return self._compute(stem, method, (student_id, chunk_id, slice_id), teacher_ids, key, ids)

    def _compute(self, stem, method, position, teacher_ids, key, ids) -> torch.Tensor:
        student_id, chunk_id, slice_id = position
        start = time.perf_counter()
        index = torch.as_tensor(ids, dtype=torch.long, device=self.inputs.device)
        teachers = [self.load_teacher(t) for t in teacher_ids]
        labels = ensemble_soft_labels(teachers, self.inputs[index], self.temperature, self.n_classes)
        save_checkpoint(stem, {"labels": labels}, {"key": key, "method": method, "student_id": student_id,
                                                  "chunk_id": chunk_id, "slice_id": slice_id,
                                                  "teacher_ids": list(teacher_ids),
                                                  "ids_hash": hash_ids(ids)})
        seconds = time.perf_counter() - start
        self.label_forwards += int(ids.size) * len(teacher_ids)
        self.seconds += seconds
        self.on_event(LabelEvent("labelled", method, student_id, chunk_id, slice_id, teacher_ids, int(ids.size),
                                 seconds))
        return labels
