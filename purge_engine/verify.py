"""Verification: is the unlearned run what training from scratch, on data that never held the
forgotten samples, gives? (DESIGN section 6.)

The reference is built without the live run's bookkeeping: the dataset is rebuilt from its
source with the ledger's forgotten ids excluded and preprocessed afresh (fixed constants, so no
sample depends on another), `make_plan` places that data on its own (placement is a function of
the config and each sample's stable id), and every constituent trains from its seeded init. Then:
- every parameter of every constituent is compared with torch.equal;
- the ids every live checkpoint and soft-label file says it was trained on must hash to the
  reference's ids for the same step (data that provably lacks the forgotten samples), and no
  forgotten id may sit in any slice of the live plan;
- the request's measured work must have equalled its predicted work.
Any failure makes `exact` false and says why.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from purge_engine import audit, contrast
from purge_engine.evaluate import evaluate_run
from purge_engine.events import FULL_RETRAIN, EventCallback, PhaseEvent, TotalEvent, ignore
from purge_engine.forget import compare_parameters, targets_of
from purge_engine.plan import job_sample_steps
from purge_engine.run import Run
from purge_engine.rundir import records, sidecar
from purge_engine.rundir.checkpoints import hash_ids, read_sidecar
from purge_engine.rundir.lock import run_is_busy
from purge_engine.rundir.names import (
    SCRATCH,
    SIDECAR_SUFFIX,
    TENSORS_SUFFIX,
    CheckpointName,
    ConstituentName,
    checkpoint_walk,
    label_walk,
)


def forgotten_ids(ledger, up_to: int) -> list[int]:
    """Every sample id the ledger's requests 1..up_to asked to forget, read from their `started` entries."""
    return sorted(records.asked_ids(ledger.entries(), up_to=up_to))


def scratch_dir(exp, name: str) -> Path:
    path = exp.store.root / SCRATCH / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def build_reference(exp, path: Path, forgotten: list[int]):
    """A new run over the dataset rebuilt without `forgotten`, planned on that data alone."""
    # the same execution path: the environment verify compares
    return Run.create(exp.config, path, exclude=forgotten, executor=exp.executor)


def live_holds(plan, forgotten: list[int]) -> list[str]:
    """Where forgotten ids still sit in the live plan's teacher and student slices (empty: nowhere)."""
    drop = np.asarray(forgotten, dtype=np.int64)
    found = [f"Teacher {i + 1} slice {j + 1}" for i, slices in enumerate(plan.teacher_shards)
             for j, ids in enumerate(slices) if np.isin(ids, drop).any()]
    found += [f"Student {k + 1} chunk {c + 1} slice {j + 1}" for k, chunks in enumerate(plan.student_shards)
              for c, slices in enumerate(chunks) for j, ids in enumerate(slices) if np.isin(ids, drop).any()]
    return found


def _checkpoint_mismatches(exp, reference, roles) -> list[str]:
    """Live checkpoints whose recorded ids are not the reference's ids for the same step."""
    bad = []
    for name, spec in checkpoint_walk(reference.chains, roles):
        meta = read_sidecar(exp.store.stem(name)) or {}
        if meta.get(sidecar.IDS_HASH) != hash_ids(spec.ids):
            bad.append(f"{name.role} {name.constituent} step {name.step + 1}")
    return bad


def _label_mismatches(exp, reference, methods) -> list[str]:
    """Live soft-label files whose recorded ids are not the reference's ids for the same slice."""
    bad = []
    for name in label_walk(reference.plan, methods):
        meta = read_sidecar(exp.store.stem(name)) or {}
        if meta.get(sidecar.IDS_HASH) != hash_ids(name.ids(reference.plan)):
            bad.append(f"{name.method} Student {name.student + 1} chunk {name.chunk + 1} slice {name.slice + 1} "
                       f"Teacher {name.teacher + 1}")
    return bad


def absence_check(exp, reference, forgotten: list[int], methods) -> dict:
    """No forgotten id in the live plan, and every live file's ids are the reference's."""
    roles = ["teacher", *methods]
    in_plan = live_holds(exp.plan, forgotten)
    files = _checkpoint_mismatches(exp, reference, roles) + _label_mismatches(exp, reference, methods)
    in_reference = live_holds(reference.plan, forgotten)
    problems = ([f"forgotten samples still in {', '.join(in_plan[:5])}"] if in_plan else []) + \
        ([f"trained on other ids than the reference: {', '.join(files[:5])}"] if files else []) + \
        ([f"reference holds forgotten ids in {', '.join(in_reference[:5])}"] if in_reference else [])
    return {"forgotten_absent": not problems, "problems": problems}


def lend_unaffected(exp, reference, affected: dict[str, set[int]]) -> None:
    """Copy the final checkpoints of unaffected constituents into the reference run. The reference
    reuses one only if its key equals the key the reference computes from its own plan and data."""
    for role, c in exp.constituents(affected):
        if c in affected[role]:
            continue
        last = CheckpointName(role, c, exp.job(role, c).steps[-1].step)
        for suffix in (TENSORS_SUFFIX, SIDECAR_SUFFIX):
            source = exp.store.stem(last).with_suffix(suffix)
            target = reference.store.stem(last).with_suffix(suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _environment_reasons(exp, roles) -> list[str]:
    """Why exactness cannot be claimed: every checkpoint of every chain read, because the path decides
    the bits of every step, not only the last one's. A run whose steps were trained on different paths
    is named as such (no reference can reproduce it, which is no evidence of an unlearning failure)."""
    here, reasons, paths = exp.environment(), [], {}
    for name, spec in checkpoint_walk(exp.chains, roles):
        role, c = name.role, name.constituent
        recorded = (read_sidecar(exp.store.stem(name)) or {}).get(sidecar.ENVIRONMENT, {})
        paths.setdefault(recorded.get(sidecar.PATH), f"{role} {c} step {name.step}")
        if spec is exp.chains.steps(role, c)[-1]:  # the constituent's final checkpoint: its environment now
            reasons += [f"{role} {c}: {k} was {recorded.get(k)!r} when trained, {here[k]!r} now"
                        for k in here if recorded.get(k) != here[k] and (k != sidecar.PATH or len(paths) == 1)]
    if len(paths) > 1:
        mixed = ", ".join(f"{path!r} (e.g. {where})" for path, where in paths.items())
        reasons = [f"steps trained on different paths: {mixed}", *[r for r in reasons if ": path was" not in r]]
    return reasons


def compare_all(exp, reference, roles) -> list[dict]:
    """One row per constituent: torch.equal over every parameter, the largest |difference|, both hashes."""
    rows = []
    for role, c in exp.constituents(roles):
        live, ref = exp.parameters(role, c), reference.parameters(role, c)
        owner = str(ConstituentName(role, c))
        rows.append({"role": role, "constituent": c, **compare_parameters(live, ref),
                     "hash": exp.param_hashes([role])[owner], "reference_hash": reference.param_hashes([role])[owner]})
    return rows


def reference_sentence(exp, forgotten: list[int], request_id: int, affected_only: bool) -> str:
    trained = ("constituents the request affected retrained from their seeded init; the others reused only "
               "where the reference's own content keys matched" if affected_only else
               "every constituent trained from its seeded init")
    return (f"{exp.config.dataset} rebuilt from its source without the {len(forgotten)} sample(s) of requests "
            f"1-{request_id} in the ledger and preprocessed afresh with fixed constants; placed by make_plan on that "
            f"data alone (placement depends only on the config and each sample's id); {trained}, same seed")


def _verdict(equal: bool, absence: dict, cost_ok, reasons: list[str]) -> str:
    if reasons:
        return "exactness not claimed: " + "; ".join(reasons[:5])
    if not absence["forgotten_absent"]:
        return "not exact: " + "; ".join(absence["problems"])
    if cost_ok is not True:
        return "not exact: the request's measured work differed from its prediction (see the ledger)"
    if not equal:
        return "not exact: some parameters differ from the from-scratch run"
    return "every constituent equals a from-scratch run on data that never held the samples, bit for bit"


def verify_request(exp, record: dict, on_event: EventCallback | None = None, should_stop=None,
                   affected_only: bool = False) -> dict:
    """Build the independent reference, train it, and judge the live run against it (module docstring)."""
    methods, request_id = record[records.METHODS], record[records.REQUEST_ID]
    roles = ["teacher", *methods]
    forgotten = forgotten_ids(exp.ledger, request_id)
    path = scratch_dir(exp, "verify")
    try:
        reference = build_reference(exp, path, forgotten)
        if affected_only:
            lend_unaffected(exp, reference, _affected(record, methods))
        start = time.perf_counter()
        reference.train(on_event=on_event or ignore, should_stop=should_stop, methods=methods)
        seconds = time.perf_counter() - start
        rows = compare_all(exp, reference, roles)
        absence = absence_check(exp, reference, forgotten, methods)
        plan_matches = exp.plan.same_layout(reference.plan)
        evidence = reference_evidence(exp, reference, record)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return {**_result(rows, absence, record.get("cost_matches_prediction"), _environment_reasons(exp, roles),
                      plan_matches, seconds, reference_sentence(exp, forgotten, request_id, affected_only)),
            **evidence}


def reference_evidence(exp, reference, record: dict) -> dict:
    """The request's membership test and canary rates on the from-scratch reference, and the contrast's
    stress tests on it (audit.py, contrast.py); the audited inputs come from the live data, which the
    reference's no longer holds. Empty for a request served without scoring."""

    found = targets_of(record)
    if not found:
        return {}
    ids, roles = record[records.SAMPLE_IDS], ["teacher", *record[records.METHODS]]
    extra = audit.extra_references(reference, found, ids)  # the same seeds and data: the same models
    result = {"evidence_reference": audit.evidence(reference, found, ids, roles, data=exp.bundle, extra=extra)}
    if record.get(records.CONTRAST):
        owners = map(ConstituentName.parse, record[records.CONTRAST]["constituents"])
        keys = [(owner.role, owner.constituent) for owner in owners]
        result["contrast_reference"] = contrast.reference_series(reference, found, ids, keys, exp.bundle, extra)
    return result


def _affected(record: dict, methods) -> dict[str, set[int]]:
    affected = {"teacher": set(map(int, record[records.SCOPE]["teachers"]))}
    affected.update({m: set(map(int, record[records.SCOPE]["students"][m])) for m in methods})
    return affected


def _result(rows, absence, cost_ok, reasons, plan_matches, seconds, sentence) -> dict:
    equal = all(r["equal"] for r in rows)
    exact = equal and absence["forgotten_absent"] and cost_ok is True and not reasons
    return {"exact": exact, "equal": equal, "forgotten_absent": absence["forgotten_absent"],
            "cost_matches_prediction": cost_ok is True, "plan_matches_reference": plan_matches,
            "reference": sentence, "constituents_compared": len(rows),
            "parameters_compared": sum(r["parameters"] for r in rows),
            "max_abs_diff": max((r["max_abs_diff"] for r in rows), default=0.0),
            "environment_differs": reasons, "problems": absence["problems"],
            "reason": _verdict(equal, absence, cost_ok, reasons), "seconds": seconds, "details": rows}


def _latest_or_refuse(run, request_id) -> int:
    """The request to verify: the latest one done (request_id None) or request_id when it is that one."""
    latest = run.latest_request()
    if latest is None:
        raise ValueError("request: this run has served no forget request yet; nothing to verify")
    if request_id is not None and not 1 <= request_id <= latest:
        raise ValueError(f"request: got {request_id}, must be the id of a request this run has served, in "
                         f"[1, {latest}]; only the latest ({latest}) can be verified")
    if request_id is not None and request_id != latest:
        raise ValueError(f"request: got {request_id}; only the latest request ({latest}) can be verified, "
                         "because later requests have changed the constituents since")
    return latest


def verify_latest(run, request_id, on_event, should_stop, affected_only: bool) -> dict:
    """Verify the latest request under the writer lock and record the verdict in the ledger.

    Checked once before the lock (a refused verify leaves the run as it was) and again under it: a
    forget request that held the lock meanwhile has changed the plan and the constituents, and a
    verdict on the request before it would be false."""
    if run_is_busy(run.store) is None:  # no request in progress that could become the latest: refuse now
        _latest_or_refuse(run, request_id)
    what = "a verification" + (f" of request {request_id}" if request_id is not None else "")
    with run.writing(what, on_event or ignore, should_stop):
        if run.ledger.pending():
            raise ValueError(f"request: request {run.ledger.pending()[-1]} was journaled but not finished; "
                             "finish it (open the run, or `forget` finishes it first) before verifying")
        latest = _latest_or_refuse(run, request_id)
        result = verify_request(run, run.ledger.record(latest), on_event, should_stop, affected_only)
        run.ledger.append(latest, records.VERIFIED, result)
    return result


def full_retrain(run, methods, on_event, should_stop) -> dict:
    """Retrain every teacher and the given student methods from scratch, in a scratch directory, on the
    dataset rebuilt without every forgotten sample: the reference cost. Reports cost, accuracy, and
    whether the result equals the unlearned run bit for bit. Its events start with PhaseEvent FULL_RETRAIN
    and its own TotalEvent, so a client draws it apart from the request before it (progress.Progress)."""
    on_event = on_event or ignore
    on_event(PhaseEvent("phase", FULL_RETRAIN, "every teacher and student from scratch, for comparison"))
    path = scratch_dir(run, "full-retrain")
    try:
        reference = build_reference(run, path, sorted(run.plan.forgotten))
        on_event(TotalEvent("total", job_sample_steps(reference.plan, methods), counts_reused=True, what=FULL_RETRAIN))
        start = time.perf_counter()
        costs = reference.train(on_event=on_event, should_stop=should_stop, methods=methods)
        seconds = time.perf_counter() - start
        roles = ["teacher", *methods]
        same = all(run.param_hashes(roles)[k] == v for k, v in reference.param_hashes(roles).items())
        return {"seconds": seconds, "sample_steps": sum(c.sample_steps for c in costs.values()),
                "label_forwards": sum(c.label_forwards for c in costs.values()),
                "cost": {r: c.to_dict() for r, c in costs.items()},
                "accuracy": evaluate_run(reference)["accuracy"], "identical_to_unlearned": same}
    finally:
        shutil.rmtree(path, ignore_errors=True)
