"""Experiment: the public face of the engine, a thin facade over a Run and one module per verb.

    exp = Experiment.create(PurgeConfig(), "runs/demo")
    exp.train(on_event=print)                 # run.py + executors.py
    exp.evaluate()["accuracy"]                # evaluate.py
    report = exp.forget([3, 17, 42])          # forget.py: journal, retrain what they touched, score
    exp.verify()["exact"]                     # verify.py: against an independent from-scratch run
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from purge_engine import evaluate as _evaluate
from purge_engine import forget as _forget
from purge_engine import verify as _verify
from purge_engine.audit import report
from purge_engine.events import EventCallback, ignore
from purge_engine.forget import ForgetReport
from purge_engine.plan import FULL_RETRAIN_METHODS, METHODS
from purge_engine.request_plan import RequestPlan, plan_request
from purge_engine.run import Run, device_label, resolve_config, resolve_device  # noqa: F401 (re-exported)
from purge_engine.rundir import records


class Experiment(Run):
    """A Run with the verbs: evaluate, forget, finish_pending, verify, full_retrain."""

    @classmethod
    def open(cls, run_dir: Path | str, finish_pending: bool = True, **options) -> Experiment:
        """The run in run_dir. A request a dead process left half done is finished first, unless
        finish_pending is False (a caller that must not block, like a page script, finishes it later).
        options: Run.open's (executor, switch, wait, on_wait)."""
        exp = super().open(run_dir, **options)
        if finish_pending:
            exp.finish_pending()
        return exp

    # -- evaluation (evaluate.py) ----------------------------------------------------------------------
    def constituent_probs(self, role: str, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Softmax outputs (n, classes) of every constituent of a role."""
        return _evaluate.constituent_probs(self, role, inputs)

    def evaluate(self, inputs: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """Accuracy of every trained role's ensemble and of every constituent (evaluate.evaluate_run)."""
        return _evaluate.evaluate_run(self, inputs, labels)

    def audit(self, request_id: int | None = None, top: int = 10) -> dict:
        """The evidence that a request's samples were forgotten (audit.report): membership p-values per
        sample and constituent before, after and on the reference, canary rates, the approximate contrast."""

        with self.writing("an audit", shared=True):
            return report(self, request_id, top)

    # -- forget requests (forget.py) -------------------------------------------------------------------
    def forget(self, request, methods: Sequence[str] = METHODS, full_retrain: bool = False,
               on_event: EventCallback | None = None, should_stop: Callable[[], bool] | None = None,
               score: bool = True, evidence: bool = True) -> ForgetReport:
        """Serve a forget request: remove the samples from the plan and retrain exactly what they
        touched (section 5). Journaled in the ledger before any work and marked done after; a second
        request on the same run waits for this one. A should_stop() that turns true raises
        events.Cancelled between steps: the request stays journaled and finish_pending() (or the next
        open()) finishes it. score=False leaves out the accuracy and membership scoring around the
        request (sweeps and benchmarks, which time the retraining alone). evidence=False keeps the
        scoring but leaves out the evidence of forgetting (audit.py: the per-sample membership test, the
        canary rates, the approximate contrast); score=False leaves out both. request: the sample ids,
        or a RequestPlan (request_plan.plan_request: the request planned once, as a client previewed it)."""
        if not isinstance(request, RequestPlan):  # the sample ids: planned here, once
            request = plan_request(self.plan, request, methods, full_retrain)
        report = _forget.serve(self, request, on_event or ignore, should_stop, score, evidence)
        if full_retrain or request.full_retrain:
            with self.writing(f"a full retrain after request {report.request_id}", on_event or ignore, should_stop):
                report.full_retrain = self.full_retrain(on_event=on_event, should_stop=should_stop)
                self.ledger.append(report.request_id, records.FULL_RETRAIN, {records.FULL_RETRAIN: report.full_retrain})
        return report

    def finish_pending(self, on_event: EventCallback | None = None,
                       should_stop: Callable[[], bool] | None = None) -> list[ForgetReport]:
        """Finish requests a dead process left journaled but not done (skipped while another process
        holds the writer lock: it is still working on them). should_stop: as forget's; a cancelled
        request stays journaled for the next try."""
        return _forget.finish_pending(self, on_event or ignore, should_stop)

    # -- verification and the reference cost (verify.py) -----------------------------------------------
    def verify(self, request_id: int | None = None, on_event: EventCallback | None = None,
               should_stop: Callable[[], bool] | None = None, affected_only: bool = False) -> dict:
        """Judge the latest request against a from-scratch run on the dataset rebuilt without every
        forgotten sample, placed and trained independently of this run's bookkeeping. affected_only:
        the reference retrains only the affected constituents (faster; the others are reused where the
        reference's own keys match)."""
        return _verify.verify_latest(self, request_id, on_event, should_stop, affected_only)

    def full_retrain(self, methods: Sequence[str] = FULL_RETRAIN_METHODS, on_event: EventCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> dict:
        """Every teacher and the given student methods from scratch without the forgotten samples."""
        return _verify.full_retrain(self, methods, on_event, should_stop)
