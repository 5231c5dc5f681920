"""PURGE's advantage over the baseline student for one forget request: the one definition every page,
the CLI and the tests use. Pure: no torch.

    advantage = sample-steps the baseline (SISA-style) student retrains
              / sample-steps PURGE's students retrain, for the same request on the same plan

Teacher retraining is the same for every method (the teachers are SISA teachers under all of them),
so it is shown beside the ratio, never inside it; this is the ratio the closed form
(`theory.teacher_side_speedup`) and the Trade-offs page's "T×" measure.

Which side a request lands on decides what PURGE can do (section 5):
- teacher-side (every sample only in teacher shards): PURGE retrains one student from the chunk where
  that teacher entered; the baseline retrains every student from scratch, because each of its labels
  came from the whole ensemble;
- student-side (a sample sits in a student chunk): every method retrains that student from the
  sample's slice, so the advantage is at most 3R/(2R+1) (R: that student's steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from purge_engine.plan import Plan, RetrainScope, predicted_cost, retrain_scope
from purge_engine.seeding import seed_for

SIDES = ("teacher-side", "student-side", "both")
REQUEST_SIZES = (1, 3)  # a naive demo request: one to three clicked samples
MAX_DRAWS = 10_000


def advantage(cost: dict) -> float | None:
    """Baseline student sample-steps over PURGE student sample-steps, from `plan.predicted_cost` (or
    the work a request measured); None when PURGE retrains no student sample (no ratio to show: the
    request reaches no student, or only students forgetting has emptied)."""
    purge, baseline = cost["purge"]["sample_steps"], cost["baseline"]["sample_steps"]
    return baseline / purge if purge else None


def retrained_share(cost: dict, role: str, total: dict) -> float:
    """Share of `role`'s from-scratch sample-steps (`total`: `plan.training_cost`) this request retrains."""
    whole = total[role]["sample_steps"]
    return cost[role]["sample_steps"] / whole if whole else 0.0


def request_side(plan: Plan, sample_ids) -> str:
    """"teacher-side", "student-side" or "both": where the request's samples sit in `plan`."""
    where = [plan.locate(int(i)) for i in plan.check_request(sample_ids)]
    in_student = [w["student"] is not None for w in where]
    in_teacher = [w["teacher"] is not None for w in where]
    if not any(in_student):
        return "teacher-side"
    return "student-side" if not any(in_teacher) else "both"


def why(plan: Plan, sample_ids, scope: RetrainScope | None = None) -> str:
    """One sentence on what PURGE can save on this request, true for every sample in it (scope: the
    request's retrain_scope when the caller has it already)."""
    side = request_side(plan, sample_ids)
    scope = scope or retrain_scope(plan, sample_ids)
    held = sorted({plan.locate(int(i))["student"] for i in sample_ids} - {None})
    purge = sorted(scope.students["purge"])
    each = "each " if len(purge) > 1 else ""
    if side == "teacher-side":
        return (f"This request is teacher-side: PURGE retrains only {_names(purge)} (mapped to the affected "
                f"{'teacher' if len(scope.teachers) == 1 else 'teachers'}), {each}from the chunk where its teacher "
                f"entered; the baseline retrains all {plan.n_students} students from scratch.")
    if not scope.teachers:
        return (f"This request is student-side: a sample sits in the data of {_names(held)}, so every method "
                f"retrains {'that student' if len(held) == 1 else 'those students'} from the sample's slice; "
                "PURGE can save only the relabelling and the steps before it.")
    return (f"This request touches both sides: a sample sits in the data of {_names(held)} (every method retrains "
            f"{'it' if len(held) == 1 else 'them'} from that sample's slice), and a teacher retrains, so the "
            f"baseline retrains all {plan.n_students} students from scratch while PURGE retrains {_names(purge)}.")


def _names(students) -> str:
    return ", ".join(f"Student {k + 1}" for k in students) or "no student"


@dataclass(frozen=True)
class AdvantageSurvey:
    """Predicted advantage over `draws` random requests of 1-3 samples on one plan (nothing trained)."""

    advantages: tuple[float, ...]  # one per request that retrains any student
    sides: tuple[str, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.advantages)) if self.advantages else float("nan")

    def share(self, side: str) -> float:
        return self.sides.count(side) / len(self.sides) if self.sides else 0.0

    def to_dict(self) -> dict:
        return {"median_advantage": self.median, "requests": len(self.sides),
                "quartiles": [float(q) for q in np.percentile(self.advantages, [25, 75])] if self.advantages else [],
                "sides": {side: self.share(side) for side in SIDES}}


def survey(plan: Plan, draws: int = 200, sizes: tuple[int, int] = REQUEST_SIZES, seed: int = 0) -> AdvantageSurvey:
    """Draw `draws` requests, each of k ~ U{sizes} distinct samples uniform over the samples the plan
    holds (what a demo giver ticking images does), and price each with the plan alone."""
    if not isinstance(draws, int) or not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"draws: got {draws!r}, must be an integer in [1, {MAX_DRAWS}]")
    held = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    low, high = sizes
    if not 1 <= low <= high <= held.size:
        raise ValueError(f"sizes: got {sizes!r}, must be 1 <= low <= high <= {held.size} (samples held)")
    rng = np.random.default_rng(seed_for(seed, "advantage-survey"))
    values, sides = [], []
    for _ in range(draws):
        ids = rng.choice(held, int(rng.integers(low, high + 1)), replace=False).tolist()
        value = advantage(predicted_cost(plan, retrain_scope(plan, ids)))
        sides.append(request_side(plan, ids))
        if value is not None:
            values.append(value)
    return AdvantageSurvey(tuple(values), tuple(sides))
