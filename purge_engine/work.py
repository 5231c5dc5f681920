"""The work a forget request did, read back from what it wrote, and its check against the prediction.

Every checkpoint and soft-label file trained while serving a request carries that request's id in
its sidecar. Summing them over the constituents' current chains gives the request's work in
sample-steps (samples x epochs) and teacher forward passes, whether it ran in one process or was
finished after a crash; section 7 requires it to equal what the plan predicted, exactly.
"""

from __future__ import annotations

from purge_engine.checkpoints import read_sidecar


def _trained_by(meta: dict | None, request_id: int) -> bool:
    return meta is not None and meta.get("request_id") == request_id


def _training_work(exp, role: str, request_id: int) -> int:
    total = 0
    for _, c in exp.constituents([role]):
        for spec in exp.job(role, c).steps:
            meta = read_sidecar(exp.store.checkpoint_stem(role, c, spec.step))
            if _trained_by(meta, request_id):
                total += int(meta["samples"]) * int(meta["epochs"])
    return total


def _label_work(exp, method: str, request_id: int) -> int:
    plan, total = exp.plan, 0
    for k in range(plan.n_students):
        for c in range(plan.n_chunks(k)):
            for t in plan.labelling_teachers(method, k, c):
                for j in range(plan.student_slices):
                    meta = read_sidecar(exp.store.labels_stem(method, k, c, j, t))
                    if _trained_by(meta, request_id):
                        total += int(meta["forwards"])
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
