"""What a forget request reports: the ForgetReport, and the parameter comparison behind the
exactness verdict (sections 5-6). Accuracy and the membership check live in scoring.py; they are
re-exported here for code that imports them from this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from purge_engine import audit, contrast
from purge_engine.advantage import advantage
from purge_engine.audit import Target
from purge_engine.constituents import check_methods
from purge_engine.evaluate import accuracy_of
from purge_engine.plan import METHODS
from purge_engine.request_plan import plan_request
from purge_engine.rundir import records
from purge_engine.rundir.lock import writer_lock
from purge_engine.rundir.manifest import recorded_roles
from purge_engine.scoring import RETAINED_SAMPLE, SampleSets, membership_check, sample_losses, sample_sets, score
from purge_engine.work import cost_matches, work_of_request

__all__ = ["ForgetReport", "compare_parameters", "accuracy_of", "RETAINED_SAMPLE", "SampleSets",
           "membership_check", "sample_losses", "sample_sets"]


@dataclass
class ForgetReport:
    request_id: int
    sample_ids: list[int]
    methods: list[str]
    scope: dict  # RetrainScope.to_dict()
    predicted: dict  # plan.predicted_cost(): sample-steps and label passes per role/method
    cost: dict = field(default_factory=dict)  # measured: role -> Cost.to_dict()
    retrained: dict = field(default_factory=dict)  # role -> {constituent: first step retrained}
    reused: dict = field(default_factory=dict)  # role -> constituents left untouched
    accuracy: dict = field(default_factory=dict)  # {"before"|"after": {role: {"test", "retained", "forgotten"}}}
    membership: dict = field(default_factory=dict)  # {"before"|"after": {role: scoring.membership_check()}}
    evidence: dict = field(default_factory=dict)  # {"targets", "before", "after"}: audit.evidence() (section 14)
    contrast: dict | None = None  # contrast.measure(): approximate unlearning and the stress tests
    hashes: dict = field(default_factory=dict)  # {"before"|"after": {"role-id": param hash}}
    outputs: dict = field(default_factory=dict)  # {"before"|"after": {"role-id": scoring.constituent_outputs()}}
    full_retrain: dict | None = None
    verification: dict | None = None
    resumed: bool = False  # finished after a crash, on reopening the run
    work: dict = field(default_factory=dict)  # role -> sample_steps, label_forwards read back from what it wrote
    cost_matches_prediction: bool | None = None  # work == predicted, for every role (section 7)
    advantage: dict = field(default_factory=dict)  # side, why, predicted and measured (advantage.py)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_parameters(live: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict:
    """Bitwise comparison of two state dicts (torch.equal per tensor) with the largest |difference|."""
    if live.keys() != reference.keys():
        return {"equal": False, "parameters": 0, "tensors": 0, "max_abs_diff": float("inf")}
    equal = all(torch.equal(live[k], reference[k]) for k in live)
    diff = max((float((live[k].double() - reference[k].double()).abs().max()) for k in live if live[k].numel()),
               default=0.0)
    return {"equal": equal, "parameters": int(sum(t.numel() for t in live.values())), "tensors": len(live),
            "max_abs_diff": diff}


# -- serving a request (section 5) ---------------------------------------------------------------------
def _scores(run, roles, ids, wanted: bool) -> tuple[dict, dict, dict]:
    """(accuracy, membership, per-constituent outputs) around a request; empty when not wanted."""

    constituents: dict = {}
    accuracy, membership = score(run, roles, ids, constituents) if wanted else ({}, {})
    return accuracy, membership, constituents


def serve(run, request, on_event, should_stop, score: bool = True, evidence: bool = True) -> ForgetReport:
    """Check and journal a forget request (request_plan.RequestPlan: planned once, by the caller), then
    execute it; the caller holds no lock (this takes it). A plan another process changed meanwhile is
    planned again under the lock."""

    methods = list(request.methods)
    check_methods(methods)
    _check_keeps_students(run, methods)
    if not run.store.lock_path.exists():
        _check_trained(run, methods)
    with run.writing("a forget request", on_event, should_stop):
        if not request.still_holds(run.plan):
            request = plan_request(run.plan, request.sample_ids, methods, request.full_retrain)
        ids, scope = list(request.sample_ids), request.scope
        _check_trained(run, methods)
        roles = ["teacher", *methods]
        accuracy, membership, outputs = _scores(run, roles, ids, score)
        found, evidence, before, extra = _evidence_before(run, ids, roles, scope.to_dict(), score and evidence)
        request_id = run.ledger.next_request_id()
        started = {records.SAMPLE_IDS: ids, records.METHODS: list(methods), records.SCOPE: scope.to_dict(),
                   records.SCORE: score, records.PREDICTED: request.predicted,
                   records.HASHES_BEFORE: run.param_hashes(roles), "side": request.side, "why": request.why,
                   "accuracy_before": accuracy, "membership_before": membership, "outputs_before": outputs,
                   records.EVIDENCE_TARGETS: [t.to_dict() for t in found], "evidence_before": evidence}
        run.ledger.append(request_id, records.STARTED, started)
        return execute(run, request_id, started, on_event, should_stop=should_stop, before=before, extra=extra)


def _evidence_before(run, ids, roles, scope: dict, wanted: bool):
    """(targets, evidence, pre-request weights for the contrast, extra reference models) before the
    request; empty when not wanted. The weights stay in memory: a copy on disk would keep what the
    request asks to remove. The extra references hold none of the samples and serve before and after."""

    if not wanted:
        return [], {}, None, None
    found = audit.targets(run.plan, ids, roles)
    before = contrast.snapshot(run, scope) if "purge" in roles else None
    extra = audit.extra_references(run, found, ids)
    return found, audit.evidence(run, found, ids, roles, extra=extra), before, extra


def targets_of(record: dict) -> list:
    """The membership targets a request recorded (audit.Target), in order."""

    return [Target(**{**t, "references": tuple(t["references"])}) for t in record.get(records.EVIDENCE_TARGETS, [])]


def _check_keeps_students(run, methods) -> None:
    """A request must keep up to date every student method the run has trained, or at least one: one that
    named none would retrain the teachers alone and leave every student stale, carrying what it learned
    from the forgotten samples (the "teacher only" of audit's canary table, which is measured, not served)."""
    if methods:
        return

    trained = [m for m in METHODS if m in run.trained_roles()]
    if trained:
        raise ValueError(f"methods: got none; name at least one of {', '.join(trained)} (a request that retrains "
                         "the teachers alone leaves every student carrying what it learned from the samples)")


def _check_trained(run, methods) -> None:
    missing = [r for r in ("teacher", *methods) if r not in run.trained_roles()]
    if missing:
        damaged = bool(set(missing) & recorded_roles(run.store))  # trained once: files were damaged since
        raise ValueError(f"run: {', '.join(missing)} not trained for the current plan; " + (
            f"files are missing or damaged: `python -m purge_engine check --run {run.store.root} --repair` "
            "rebuilds them" if damaged else "train the run before forgetting"))


def _train_for(run, request_id: int, methods, on_event, should_stop) -> tuple[dict, dict]:
    """Train the run to its plan, every file it writes stamped with the request; (costs, retrained)."""
    retrained: dict[str, dict[int, int]] = {}

    def watch(event) -> None:
        if getattr(event, "kind", "") == "training":
            retrained.setdefault(event.role, {}).setdefault(event.constituent, event.step)
        on_event(event)

    run.request_id = request_id
    try:
        costs = run.train(on_event=watch, should_stop=should_stop, methods=methods)
    finally:
        run.request_id = None
    return costs, retrained


def execute(run, request_id: int, started: dict, on_event, resumed: bool = False, should_stop=None,
            before: dict | None = None, extra: dict | None = None) -> ForgetReport:
    """Apply a journaled request to the plan (once), bring every constituent up to date, record it
    with the check that the work done equals the work predicted. before: the pre-request weights of
    what PURGE retrains (contrast.snapshot), for the approximate contrast; None (a request finished
    after a crash) leaves the contrast out. extra: the extra reference models built before (rebuilt when None)."""

    ids, methods = started[records.SAMPLE_IDS], started[records.METHODS]
    roles = ["teacher", *methods]
    if not set(ids) <= run.plan.forgotten:
        run.plan = run.plan.without(ids)
        run.store.write_plan(run.plan)
    costs, retrained = _train_for(run, request_id, methods, on_event, should_stop)
    accuracy, membership, outputs = _scores(run, roles, ids, started.get(records.SCORE, True))
    evidence, contrasted = _evidence_after(run, started, before, extra)
    work = work_of_request(run, request_id, methods)
    check = cost_matches(started[records.PREDICTED], work, roles)
    report = ForgetReport(
        request_id=request_id, sample_ids=ids, methods=list(methods), scope=started[records.SCOPE],
        predicted=started[records.PREDICTED], cost={role: c.to_dict() for role, c in costs.items()},
        retrained={r: {str(c): s for c, s in v.items()} for r, v in retrained.items()},
        reused={r: [c for _, c in run.constituents([r]) if c not in retrained.get(r, {})] for r in roles},
        accuracy={"before": started["accuracy_before"], "after": accuracy},
        membership={"before": started["membership_before"], "after": membership},
        hashes={"before": started[records.HASHES_BEFORE], "after": run.param_hashes(roles)},
        outputs={"before": started.get("outputs_before", {}), "after": outputs},
        evidence={"targets": started.get(records.EVIDENCE_TARGETS, []), "before": started.get("evidence_before", {}),
                  "after": evidence}, contrast=contrasted,
        resumed=resumed, work=work, cost_matches_prediction=check["matches"],
        advantage=_advantage(started, work, methods))
    done = {k: v for k, v in report.to_dict().items()
            if k in ("cost", "retrained", "reused", "resumed", "work", "advantage")}
    run.ledger.append(request_id, records.DONE, {
        **done, "accuracy_after": accuracy, "membership_after": membership,
        records.HASHES_AFTER: report.hashes["after"], "outputs_after": outputs, "evidence_after": evidence,
        records.CONTRAST: contrasted, "cost_matches_prediction": check["matches"],
        "cost_mismatches": check["mismatches"]})
    return report


def _evidence_after(run, started: dict, before: dict | None, extra: dict | None) -> tuple[dict, dict | None]:
    """(audit.evidence after the retraining, contrast.measure or None), for a request that recorded targets."""

    if not started.get(records.EVIDENCE_TARGETS) and not started.get("evidence_before"):
        return {}, None
    found, ids = targets_of(started), started[records.SAMPLE_IDS]
    extra = audit.extra_references(run, found, ids) if extra is None else extra
    evidence = audit.evidence(run, found, ids, ["teacher", *started[records.METHODS]], extra=extra)
    if not before:
        return evidence, None
    budgets = contrast.budgets(run.plan, started[records.SCOPE])
    return evidence, contrast.measure(run, found, ids, before, budgets, extra)


def _advantage(started: dict, work: dict, methods) -> dict:
    """PURGE's advantage over the baseline student on this request, predicted and as measured from
    what the retraining wrote; None where the request served no baseline or retrained no student."""

    both = {"purge", "baseline"} <= set(methods)
    return {"side": started.get("side"), "why": started.get("why"),
            "predicted": advantage(started[records.PREDICTED]) if both else None,
            "measured": advantage(work) if both and {"purge", "baseline"} <= set(work) else None}


def finish_pending(run, on_event, should_stop=None) -> list[ForgetReport]:
    """Finish requests a dead process left journaled but not done. Skipped while another process
    holds the run's writer lock (it is still working on them)."""

    if not run.ledger.pending():
        return []
    with writer_lock(run.store, wait=False, holder="finishing an interrupted request") as acquired:
        if not acquired:
            return []
        run.reload_plan()
        reports = []
        for request_id in run.ledger.pending():
            started = records.started_bodies(run.ledger.entries(request_id))[request_id]
            reports.append(execute(run, request_id, started, on_event, resumed=True, should_stop=should_stop))
        return reports
