"""A stream of teacher-side forget requests, priced from the plan alone (DESIGN section 7). Pure: no torch.

K requests, each one sample drawn from a teacher shard, are applied to the plan one at a time
("sequential") or B at a time ("batched": each constituent restarts once, from its earliest affected
step). Every step is priced exactly with `plan.predicted_cost`, in its rows:

    teacher       teacher retraining, the same for every student method
    purge         PURGE students only
    baseline      baseline students (SISA) only
    full_retrain  every teacher and every PURGE student from scratch, after every step

A policy's whole bill (what the break-even compares with one full retrain) is teacher + its students.

Teachers are drawn uniformly, or skewed toward the first teachers with Zipf weights
w_i = (i+1)^-s; the sample is then uniform within the teacher's remaining shard. Costs are in
sample-steps (samples x epochs trained).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from purge_engine.plan import Plan, predicted_cost, retrain_scope
from purge_engine.seeding import seed_for

MODES = ("sequential", "batched")
DISTRIBUTIONS = ("uniform", "skewed")
MAX_SKEW = 5.0
MAX_STREAM = 10_000
COSTS = ("teacher", "purge", "baseline", "full_retrain")


@dataclass(frozen=True)
class StreamResult:
    """One row per served step (a request, or a batch of requests), in order.

    rows[i]: step (1-based), requests (served so far), sample_ids, teacher_ids, then per COSTS this step's
    sample-steps (teacher: teacher retraining; purge / baseline: that method's students only; full_retrain)
    and cumulative_<cost> so far.
    final_full_retrain: sample-steps of one full retrain of the data left after the last request.
    break_even[method]: the number of requests served after which that method's whole bill so far
    (cumulative teacher retraining + its students) first exceeds final_full_retrain, i.e. retraining
    everything once at the end would have been cheaper; None when it never does."""

    rows: tuple[dict, ...]
    final_full_retrain: int
    break_even: dict[str, int | None]
    mode: str
    batch_size: int

    def totals(self) -> dict[str, int]:
        """Sample-steps of the whole stream per COSTS row (methods: their students only)."""
        last = self.rows[-1]
        return {name: last[f"cumulative_{name}"] for name in COSTS}

    def bill(self, method: str) -> list[int]:
        """`method`'s whole bill after each step: cumulative teacher retraining + its students."""
        return [row["cumulative_teacher"] + row[f"cumulative_{method}"] for row in self.rows]


def teacher_weights(n_teachers: int, distribution: str = "uniform", skew: float = 1.0) -> np.ndarray:
    """Probability of each teacher being hit by a request: uniform, or Zipf (i+1)^-skew."""
    _check_choice("distribution", distribution, DISTRIBUTIONS)
    if not 0.0 <= skew <= MAX_SKEW:
        raise ValueError(f"skew: got {skew!r}, must be a number in [0, {MAX_SKEW}]")
    exponent = skew if distribution == "skewed" else 0.0
    weights = np.arange(1, n_teachers + 1, dtype=float) ** -exponent
    return weights / weights.sum()


def draw_requests(plan: Plan, n_requests: int, distribution: str = "uniform", skew: float = 1.0,
                  seed: int = 0) -> tuple[int, ...]:
    """K distinct sample ids, each from a teacher drawn by `teacher_weights` among teachers with samples left.

    Seeded: the same arguments give the same ids. With student_data "overlap" a teacher-shard
    sample may also sit in a student shard; its student-side retraining is then priced too."""
    shards = [list(plan.teacher_shard(i)) for i in range(plan.n_teachers)]
    available = sum(len(s) for s in shards)
    if not 1 <= n_requests <= min(available, MAX_STREAM):
        raise ValueError(f"n_requests: got {n_requests}, must be an integer in [1, {min(available, MAX_STREAM)}] "
                         "(one teacher-shard sample per request)")
    weights = teacher_weights(plan.n_teachers, distribution, skew)
    rng = np.random.default_rng(seed_for(seed, "request-stream"))
    drawn = []
    for _ in range(n_requests):
        open_ = np.array([bool(s) for s in shards])
        teacher = int(rng.choice(plan.n_teachers, p=_renormalised(weights, open_)))
        drawn.append(int(shards[teacher].pop(int(rng.integers(len(shards[teacher]))))))
    return tuple(drawn)


def _renormalised(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    kept = np.where(mask, weights, 0.0)
    return kept / kept.sum()


def simulate_stream(plan: Plan, sample_ids, mode: str = "sequential", batch_size: int = 1) -> StreamResult:
    """Serve the requests (one sample id each) in order, sequentially or in batches of batch_size."""
    _check_choice("mode", mode, MODES)
    ids = [int(i) for i in sample_ids]
    size = 1 if mode == "sequential" else batch_size
    if not isinstance(size, int) or not 1 <= size <= max(1, len(ids)):
        raise ValueError(f"batch_size: got {batch_size!r}, must be an integer in [1, {max(1, len(ids))}]")
    if not ids:
        raise ValueError("sample_ids: got an empty stream; serve at least one request")
    rows, totals, current = [], dict.fromkeys(COSTS, 0), plan
    for start in range(0, len(ids), size):
        batch = ids[start:start + size]
        row, current = _serve(current, batch)
        for name in COSTS:
            totals[name] += row[name]
            row[f"cumulative_{name}"] = totals[name]
        rows.append({"step": len(rows) + 1, "requests": start + len(batch), **row})
    final = rows[-1]["full_retrain"]  # priced on the data left after the last request
    return StreamResult(tuple(rows), final, {m: _break_even(rows, m, final) for m in ("purge", "baseline")},
                        mode, size)


def _serve(plan: Plan, batch: list[int]) -> tuple[dict, Plan]:
    """Price one step on `plan` and return the plan without its samples."""
    cost = predicted_cost(plan, retrain_scope(plan, batch))
    row = {"sample_ids": list(batch), "teacher_ids": sorted({plan.locate(i)["teacher"] for i in batch} - {None}),
           **{name: cost[name]["sample_steps"] for name in COSTS}}
    return row, plan.without(batch)


def _break_even(rows: list[dict], method: str, final: int) -> int | None:
    """Requests served when the method's whole bill (teacher retraining + its students) first exceeds one
    full retrain of the final data."""
    return next((row["requests"] for row in rows if row["cumulative_teacher"] + row[f"cumulative_{method}"] > final),
                None)


def _check_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: got {value!r}, must be one of {', '.join(allowed)}")
