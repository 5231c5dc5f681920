"""One definition of cost on every screen: the rows a cost table has, what each counts, and the headline
ratios, each computed from the very totals a page draws under it. Pure, no st.* calls.

Rows, keyed by role id, from `plan.predicted_cost`, a request's measured cost, or either summed over
requests (Compare) or over a stream (Trade-offs):
  teacher       "Teacher retraining": the teachers a request retrains. The same for every student method
                (all of them distil SISA teachers), so it is its own row, never inside a method's.
  <method>      "PURGE students", "Baseline students (SISA)", ...: that method's students only, their
                sample-steps and label forward passes.
  full_retrain  "Full retrain": every teacher and every PURGE student from scratch on the reduced data.
Headline ratios:
  ADVANTAGE     baseline students ÷ PURGE students (purge_engine.advantage, the engine's one definition)
  FULL_RATIO    full retrain ÷ (teacher retraining + PURGE students): all PURGE spends against retraining
                everything
A page shows a ratio from `advantage_metric` / `full_ratio_metric` over the totals it also draws, so the
headline always divides out of the numbers under it (tests/dashboard/test_cost_headlines.py).
"""

from __future__ import annotations

import math

import pandas as pd

from purge_engine import METHODS, advantage, title

ROLES = ("teacher", *METHODS, "full_retrain")
ADVANTAGE = "PURGE's advantage (students only)"
ADVANTAGE_HELP = ("Baseline students' sample-steps ÷ PURGE students' (samples × epochs). Teacher retraining is "
                  "the same for both methods: it is its own row, left out of this ratio.")
FULL_RATIO = "Full retrain ÷ (teachers + PURGE students)"
FULL_RATIO_HELP = ("Sample-steps of retraining every teacher and every PURGE student from scratch ÷ all PURGE "
                   "spends: the teacher retraining plus the PURGE students.")
FULL_COLUMN = "Full retrain ÷ (teachers + this)"
COST_CAPTION = ("Sample-steps = samples × epochs each retrained step trains on. Teacher retraining is its own row, "
                "the same for every student method; a method's row counts its students only. Full retrain = every "
                "teacher and every PURGE student from scratch on the reduced data.")


def row_title(role: str) -> str:
    """"Teacher retraining", "PURGE students", "Baseline students (SISA)", "Full retrain"."""
    return title(role, "retraining")


def steps(totals: dict, role: str) -> float | None:
    """Sample-steps of `role` in `totals` (role -> {"sample_steps": ...}); None where absent or NaN (a method
    some request did not run)."""
    value = (totals.get(role) or {}).get("sample_steps")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def advantage_ratio(totals: dict) -> float | None:
    """Baseline students ÷ PURGE students: advantage.advantage over the same two totals a page draws."""
    purge, baseline = steps(totals, "purge"), steps(totals, "baseline")
    if purge is None or baseline is None:
        return None
    return advantage.advantage({"purge": {"sample_steps": purge}, "baseline": {"sample_steps": baseline}})


def full_ratio(totals: dict, method: str = "purge") -> float | None:
    """Full retrain ÷ (teacher retraining + `method`'s students)."""
    full, teacher, own = steps(totals, "full_retrain"), steps(totals, "teacher"), steps(totals, method)
    if full is None or teacher is None or own is None or not teacher + own:
        return None
    return full / (teacher + own)


def ratio_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def advantage_metric(totals: dict) -> dict:
    """{"label", "value", "help"} of the advantage headline over `totals`."""
    return {"label": ADVANTAGE, "value": ratio_text(advantage_ratio(totals)), "help": ADVANTAGE_HELP}


def full_ratio_metric(totals: dict) -> dict:
    return {"label": FULL_RATIO, "value": ratio_text(full_ratio(totals)), "help": FULL_RATIO_HELP}


def drawn(cost: dict, methods=METHODS) -> dict:
    """`cost` cut to the rows a table with `methods` draws, for the headline over that table: a method left
    out of the table (not chosen, not run) is left out of its headline too."""
    return {role: cost[role] for role in ("teacher", *methods, "full_retrain") if role in cost}


def cost_frame(predicted: dict, methods=METHODS, measured: dict | None = None,
               full_measured: dict | None = None) -> pd.DataFrame:
    """One row per role: teacher retraining, each of `methods`' students, the full retrain.

    predicted: plan.predicted_cost (its "constituents" per role). measured: a request's measured cost per
    role (ledger "cost"), or None before it runs (then no measured columns, and label passes are the
    predicted ones); full_measured: a measured full retrain, if one was run. Column FULL_COLUMN: the full
    retrain over the teacher retraining plus that method's students (the rows above it), on the method rows.
    """
    roles = ("teacher", *methods, "full_retrain")
    rows = []
    for role in roles:
        done = (full_measured if role == "full_retrain" else (measured or {}).get(role)) or {}
        row = {"Method": row_title(role), "Constituents retrained": int(predicted[role]["constituents"]),
               "Predicted sample-steps": int(predicted[role]["sample_steps"])}
        if measured is not None:
            row["Measured sample-steps"] = None if "sample_steps" not in done else int(done["sample_steps"])
            row["Seconds"] = done.get("seconds")
        row["Label forward passes"] = (done.get("label_forwards") if measured is not None
                                       else int(predicted[role]["label_forwards"]))
        row[FULL_COLUMN] = ratio_text(full_ratio(predicted, role)) if role in methods else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def shown_cost_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """cost_frame as the pages print it: numbers with separators and units, and a cell nothing measured
    (the full retrain, unless run) says "not run" instead of an empty value."""
    def number(value, unit: str = "") -> str:
        if value is None or pd.isna(value):
            return "not run"
        return f"{value:,.2f}{unit}" if unit else f"{int(value):,}"

    shown = frame.copy()
    for column in ("Predicted sample-steps", "Measured sample-steps", "Label forward passes"):
        if column in frame:
            shown[column] = [number(v) for v in frame[column]]
    if "Seconds" in frame:
        shown["Seconds"] = [number(v, " s") for v in frame["Seconds"]]
    return shown


def training_table(cost: dict) -> pd.DataFrame:
    """Rows of `training_cost(plan)`: what training each ensemble from scratch costs (Setup). Sample-steps =
    samples x epochs trained; label forward passes = samples x teachers asked for a soft label."""
    rows = [{"Method": title(key),
             "Sample-steps": int(cost[key]["sample_steps"]),
             "Label forward passes": int(cost[key]["label_forwards"]),
             "Constituents": int(cost[key]["constituents"])}
            for key in ROLES if key in cost]
    return pd.DataFrame(rows, columns=["Method", "Sample-steps", "Label forward passes", "Constituents"])
