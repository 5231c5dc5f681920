"""What a run directory will hold on disk: checkpoints, cached soft labels and the outputs cache
(DESIGN section 8).

One checkpoint per slice step of every constituent (teachers and each student method), each the
model's float32 parameters plus a small JSON sidecar; soft labels as float32 (samples, classes) per
student slice, method and labelling teacher (each teacher's outputs are cached apart, section 4.5).
The outputs cache (outputs.py) holds, after the first evaluation, every constituent's float32 softmax
on the test split. Counted from the plan, before anything is trained.
"""

from __future__ import annotations

from functools import lru_cache

from purge_engine.config import PurgeConfig
from purge_engine.datasets.sources import DATASETS
from purge_engine.plan import METHODS, Plan

FLOAT_BYTES = 4
SIDECAR_BYTES = 1500  # a JSON sidecar: keys, hashes, environment (measured on the default run: ~1.2-1.4 kB)
SAFETENSORS_HEADER_BYTES = 96  # the JSON header of a one-tensor safetensors file
OUTPUTS_HEADER_BYTES = 390  # an outputs-cache file's header: its tensor layout and metadata (keys, hashes)


@lru_cache(maxsize=32)
def parameter_count(model: str, dataset: str) -> int:
    """Number of parameters (and buffers) the model stores for this dataset's inputs."""
    from purge_engine.models import build_model  # deferred: importing the estimate (a sweep's plan) needs no torch

    net = build_model(model, DATASETS[dataset], seed=0)
    return sum(t.numel() for t in net.state_dict().values())


def storage_estimate(config: PurgeConfig, plan: Plan, methods=METHODS) -> dict:
    """Bytes a fully trained and evaluated run needs: {"teacher_checkpoints", "student_checkpoints",
    "soft_labels", "outputs", "checkpoints", "total_bytes"} (checkpoints: the count of files pairs)."""
    teacher_params = parameter_count(config.teacher_arch, config.dataset)
    student_params = parameter_count(config.student_arch, config.dataset)
    teacher_files = plan.n_teachers * plan.teacher_slices
    student_files = len(methods) * sum(plan.student_steps(k) for k in range(plan.n_students))
    label_files = [(plan.student_shards[k][c][j].size, len(plan.labelling_teachers(m, k, c)))
                   for m in methods for k in range(plan.n_students) for c in range(plan.n_chunks(k))
                   for j in range(plan.student_slices)]
    spec = DATASETS[config.dataset]
    label_values = sum(n * teachers for n, teachers in label_files) * spec.n_classes
    label_headers = sum(teachers for _, teachers in label_files) * SAFETENSORS_HEADER_BYTES
    sizes = {
        "teacher_checkpoints": teacher_files * (teacher_params * FLOAT_BYTES + SIDECAR_BYTES),
        "student_checkpoints": student_files * (student_params * FLOAT_BYTES + SIDECAR_BYTES),
        "soft_labels": label_values * FLOAT_BYTES + label_headers,
        "outputs": (plan.n_teachers + len(methods) * plan.n_students)
        * (spec.n_test * spec.n_classes * FLOAT_BYTES + OUTPUTS_HEADER_BYTES),
        "checkpoints": teacher_files + student_files,
    }
    sizes["total_bytes"] = sum(sizes[part] for part in ("teacher_checkpoints", "student_checkpoints", "soft_labels",
                                                        "outputs"))
    return sizes
