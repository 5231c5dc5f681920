"""Every job a client runs on a run, written once: train, forget, verify, repair, audit (DESIGN section 3).

The CLI and the dashboard (and any script) call these rather than assembling the steps themselves.
A recipe opens the run with the client's `Choices` (the executor, how long to wait for another
writer), announces the job's total first (events.TotalEvent, what progress.Progress counts toward),
does the work and returns the report the CLI prints as JSON and the pages draw:

    from purge_engine import recipes
    recipes.train("runs/demo", PurgeConfig(), on_event=print)
    recipes.forget("runs/demo", [3, 17, 42], verify=True)["verification"]["exact"]

A forget request may come planned already (request_plan.plan_request, as the Forget page previewed
it): the recipe reuses it, so the scope is computed once per request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from purge_engine.check import check_run
from purge_engine.config import MAX_TOP, PurgeConfig
from purge_engine.events import EventCallback, TotalEvent, ignore
from purge_engine.execution.executors import Executor
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS, job_sample_steps
from purge_engine.request_plan import RequestPlan, plan_request
from purge_engine.requests import parse_ids
from purge_engine.rundir.lock import LOCK_TIMEOUT_S


@dataclass(frozen=True)
class Choices:
    """How a client wants a job run; none of it is part of the run's identity. executor: None for the
    run's own path (execution.choose); switch: retrain the whole run on the executor's path; wait:
    seconds to wait for another writer (None: for ever); on_wait: told when it must wait; connect: how
    the executor joins its cluster (None: executor.connect() here; a server that must join from one
    long-lived thread, as Ray's local cluster dies with the thread that started it, passes its own)."""

    executor: Executor | None = None
    switch: bool = False
    wait: float | None = LOCK_TIMEOUT_S
    on_wait: Callable[[str], None] | None = None
    connect: Callable[[Executor], None] | None = None

    def options(self) -> dict:
        return {"executor": self.executor, "switch": self.switch, "wait": self.wait, "on_wait": self.on_wait}

    def join(self) -> None:
        """Join the executor's cluster, if it has one, before anything is stored (an unreachable one
        then leaves no trace)."""
        if self.executor is not None:
            (self.connect or type(self.executor).connect)(self.executor)


def open_run(run_dir: Path | str, choices: Choices = Choices()) -> Experiment:
    """The run, set up as the client chose; a request a dead process left is finished by the recipe."""
    choices.join()
    return Experiment.open(run_dir, finish_pending=False, **choices.options())


def train(run_dir: Path | str, config: PurgeConfig, methods: Sequence[str] = METHODS, *, download: bool = False,
          choices: Choices = Choices(), on_event: EventCallback = ignore,
          should_stop: Callable[[], bool] | None = None) -> dict:
    """Create (or resume) the run and bring the teachers and `methods` up to date with its plan;
    {"run", "fingerprint", "device", "cost": {role: Cost}, "accuracy", "constituents", "samples"}."""
    choices.join()
    exp = Experiment.create(config, run_dir, download=download, **choices.options())
    on_event(TotalEvent("total", job_sample_steps(exp.plan, methods), counts_reused=True, what="train"))
    costs = exp.train(on_event=on_event, should_stop=should_stop, methods=methods)
    return {"run": str(exp.store.root), "fingerprint": exp.config.fingerprint(), "device": str(exp.device),
            "cost": {role: cost.to_dict() for role, cost in costs.items()}, **exp.evaluate()}


def forget(run_dir: Path | str, request: RequestPlan | Sequence[int] | str, methods: Sequence[str] = METHODS, *,
           full_retrain: bool = False, verify: bool = False, affected_only: bool = False, evidence: bool = True,
           choices: Choices = Choices(), on_event: EventCallback = ignore,
           should_stop: Callable[[], bool] | None = None) -> dict:
    """Serve a forget request (the sample ids, their text as people write it, "3, 17, 40-45", or a
    RequestPlan as previewed) after finishing any request
    a dead process left; verify: then judge it against a from-scratch reference (affected_only: the
    reference retrains only what the request affected). ForgetReport.to_dict() with "run"."""
    if affected_only and not verify:
        raise ValueError("affected_only: --affected-only shapes the verification, so it needs --verify")
    exp = open_run(run_dir, choices)
    exp.finish_pending(on_event, should_stop)
    if isinstance(request, str):
        request = parse_ids(request, exp.plan.n_pool)
    if not isinstance(request, RequestPlan) or not request.still_holds(exp.plan):
        ids = request.sample_ids if isinstance(request, RequestPlan) else request
        request = plan_request(exp.plan, ids, methods, full_retrain)
    on_event(TotalEvent("total", request.total, what="forget"))
    report = exp.forget(request, on_event=on_event, should_stop=should_stop, evidence=evidence)
    if verify:
        verdict = exp.verify(report.request_id, affected_only=affected_only)
        report.verification = {k: v for k, v in verdict.items() if k != "details"}
    return {"run": str(exp.store.root), **report.to_dict()}


def verify(run_dir: Path | str, request_id: int | None = None, *, affected_only: bool = False,
           choices: Choices = Choices(), on_event: EventCallback = ignore,
           should_stop: Callable[[], bool] | None = None) -> dict:
    """Judge the latest request against a from-scratch reference on its own execution path (verify.py);
    the verdict with "run", "request_id" and "verification" (the verdict without its per-constituent rows)."""
    exp = open_run(run_dir, choices)
    exp.finish_pending(on_event, should_stop)
    latest = exp.latest_request()
    methods = exp.ledger.record(latest)["methods"] if latest is not None else METHODS
    # the reference trains the whole layout; what affected_only lends it counts as reused
    on_event(TotalEvent("total", job_sample_steps(exp.plan, methods), counts_reused=True, what="verify"))
    result = exp.verify(request_id, on_event=on_event, should_stop=should_stop, affected_only=affected_only)
    summary = {k: v for k, v in result.items() if k != "details"}
    return {"run": str(exp.store.root), "request_id": exp.latest_request(), **result, "verification": summary}


def repair(run_dir: Path | str, *, fix: bool = True, choices: Choices = Choices(),
           on_event: EventCallback = ignore) -> dict:
    """check.check_run: the run's damage, rebuilt and proved when `fix` (else only listed)."""
    return check_run(run_dir, repair=fix, timeout=choices.wait, on_event=on_event, on_wait=choices.on_wait)


def audit(run_dir: Path | str, request_id: int | None = None, *, top: int = 10,
          choices: Choices = Choices()) -> dict:
    """The evidence that a request's samples were forgotten (audit.report), with "run"."""
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP:
        raise ValueError(f"top: got {top!r}, must be an integer in [0, {MAX_TOP}]")
    exp = open_run(run_dir, choices)
    return {"run": str(exp.store.root), **exp.audit(request_id, top=top)}
