"""The work a forget request did, read back from what it wrote, and its check against the prediction.

Every checkpoint and soft-label file trained while serving a request carries that request's id in
its sidecar. Summing them over the constituents' current chains gives the request's work in
sample-steps (samples x epochs) and teacher forward passes, whether it ran in one process or was
finished after a crash; section 7 requires it to equal what the plan predicted, exactly.
"""

from __future__ import annotations

from purge_engine.rundir import sidecar
from purge_engine.rundir.checkpoints import read_sidecar
from purge_engine.rundir.names import checkpoint_walk, label_walk


def _trained_by(meta: dict | None, request_id: int) -> bool:
    return meta is not None and meta.get(sidecar.REQUEST_ID) == request_id


def _training_work(exp, role: str, request_id: int) -> int:
    total = 0
    for name, _ in checkpoint_walk(exp.chains, [role]):
        meta = read_sidecar(exp.store.stem(name))
        if _trained_by(meta, request_id):
            total += int(meta[sidecar.SAMPLES]) * int(meta[sidecar.EPOCHS])
    return total


def _label_work(exp, method: str, request_id: int) -> int:
    total = 0
    for name in label_walk(exp.plan, [method]):
        meta = read_sidecar(exp.store.stem(name))
        if _trained_by(meta, request_id):
            total += int(meta[sidecar.FORWARDS])
    return total


def work_of_request(exp, request_id: int, methods) -> dict[str, dict[str, int]]:
    """role -> {"sample_steps", "label_forwards"} of everything the request trained or relabelled."""
    work = {"teacher": {"sample_steps": _training_work(exp, "teacher", request_id), "label_forwards": 0}}
    for method in methods:
        work[method] = {"sample_steps": _training_work(exp, method, request_id),
                        "label_forwards": _label_work(exp, method, request_id)}
    return work


def cost_matches(predicted: dict, work: dict, roles) -> dict:
    """{"matches": bool, "mismatches": [sentences]}: measured work against predicted, role by role."""
    mismatches = [f"{role} {unit}: predicted {predicted[role][unit]:,}, measured {work[role][unit]:,}"
                  for role in roles for unit in ("sample_steps", "label_forwards")
                  if predicted[role][unit] != work[role][unit]]
    return {"matches": not mismatches, "mismatches": mismatches}
