"""A forget request planned once: what it retrains, what that costs, and PURGE's advantage on it.

Pure (no torch). The Forget page's preview, `plan --samples`, the job's total and the work itself
(forget.serve) all read the same RequestPlan, so the scope (plan.retrain_scope) is computed once
per request, not once per reader. A plan that changed since (another process served a request in
between) is planned again under the writer lock (`still_holds`).
"""

from __future__ import annotations

from dataclasses import dataclass

from purge_engine.advantage import advantage, request_side, why
from purge_engine.constituents import check_methods
from purge_engine.plan import METHODS, Plan, RetrainScope, predicted_cost, retrain_scope


@dataclass(frozen=True)
class RequestPlan:
    sample_ids: tuple[int, ...]
    methods: tuple[str, ...]
    scope: RetrainScope
    predicted: dict  # plan.predicted_cost: sample-steps and label passes per role and method
    side: str  # advantage.request_side
    why: str  # advantage.why
    full_retrain: bool = False  # the job then also trains everything from scratch (announcing its own total)
    planned_on: int = 0  # samples the plan had forgotten when this was planned

    @property
    def total(self) -> int:
        """The request's sample-steps: the teachers and each method retrained. A full retrain after it is
        counted apart: it announces its own total when it begins (events.FULL_RETRAIN)."""
        return sum(self.predicted[role]["sample_steps"] for role in ("teacher", *self.methods))

    def still_holds(self, plan: Plan) -> bool:
        """True while `plan` has forgotten nothing since this was planned (forgetting only ever adds)."""
        return len(plan.forgotten) == self.planned_on

    def advantage(self) -> dict:
        """{"side", "why", "predicted"}: PURGE's advantage over the baseline on this request."""
        return {"side": self.side, "why": self.why, "predicted": advantage(self.predicted)}


def plan_request(plan: Plan, sample_ids, methods=METHODS, full_retrain: bool = False) -> RequestPlan:
    """The request checked against `plan` (Plan.check_request's sentence when it cannot be served) and planned."""
    check_methods(methods)
    ids = plan.check_request(sample_ids)
    scope = retrain_scope(plan, ids)
    return RequestPlan(tuple(ids), tuple(methods), scope, predicted_cost(plan, scope), request_side(plan, ids),
                       why(plan, ids, scope), full_retrain, len(plan.forgotten))
