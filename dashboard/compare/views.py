"""Table builders for the Compare page: pure functions from ledger records to pandas frames, no st.* calls.

A record is `Ledger.record(request_id)`: the request's entries merged (section 8), with keys
sample_ids, methods, scope, predicted, accuracy_before (from "started"), cost, retrained,
accuracy_after (from "done"), exact/equal/reason (from the latest "verified"), full_retrain (when a
full retrain was run), status ("done" or "running") and <kind>_at times. Costs per role are
{seconds, sample_steps, label_forwards, steps_trained}; accuracies are fractions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.shared import cost, evidence
from purge_engine import METHODS, title

ROLE_ORDER = ("teacher", *METHODS)

TEACHER, PURGE, BASELINE, FULL = "teacher", "purge", "baseline", "full_retrain"  # the cost lines, keyed by role id
LINES = (TEACHER, PURGE, BASELINE, FULL)

ESTIMATE_NOTE = "estimated from this run's measured seconds per sample-step"
MAX_IDS_SHOWN = 8


# -- the ledger table ------------------------------------------------------------------------
def sample_text(sample_ids, limit: int = MAX_IDS_SHOWN) -> str:
    """[3, 17, 40] -> "3, 17, 40"; longer lists are cut with the count."""
    ids = [int(i) for i in sample_ids]
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f", … ({len(ids)} in all)" if len(ids) > limit else "")


def side_text(sample_ids, locations: dict | None) -> str:
    """"teacher", "student" or "teacher + student": where the samples sat before they were forgotten.

    locations: Plan.locations() of the run's original plan (-1 where a sample is on no side)."""
    if locations is None:
        return ""
    ids = np.asarray(list(sample_ids), dtype=np.int64)
    sides = [name for name in ("teacher", "student") if ids.size and (locations[name][ids] >= 0).any()]
    return " + ".join(sides)


def steps_text(first_steps: dict, noun: str) -> str:
    """{"0": 0, "1": 0} -> "Students 1–2 from scratch"; {"2": 4} -> "Student 3 from step 5"; {} -> "none".

    first_steps: constituent id (0-based, str or int) -> first step retrained (0-based)."""
    if not first_steps:
        return "none"
    by_step: dict[int, list[int]] = {}
    for constituent, step in sorted(((int(c), int(s)) for c, s in first_steps.items()), key=lambda p: (p[1], p[0])):
        by_step.setdefault(step, []).append(constituent)
    return "; ".join(f"{_names(ids, noun)} {'from scratch' if step == 0 else f'from step {step + 1}'}"
                     for step, ids in by_step.items())


def _names(ids: list[int], noun: str) -> str:
    shown = [i + 1 for i in sorted(ids)]
    if len(shown) == 1:
        return f"{noun} {shown[0]}"
    if shown == list(range(shown[0], shown[-1] + 1)):
        return f"{noun}s {shown[0]}–{shown[-1]}"
    return f"{noun}s " + ", ".join(map(str, shown))


def verified_text(record: dict) -> str:
    """"exact", "equal, not claimed" (environment differs), "differs" or "not verified"."""
    if "exact" not in record:
        return "not verified"
    if record["exact"]:
        return "exact"
    return "equal, not claimed" if record.get("equal") else "differs"


def status_text(record: dict, running_request: int | None = None) -> str:
    """done; running (a job is on it now); pending (journaled, then its process died)."""
    if record.get("status") == "done":
        return "done"
    return "running" if record["request_id"] == running_request else "pending"


def _retrained(record: dict, role: str) -> dict:
    """First step retrained per constituent: measured when done, else the planned scope."""
    if record.get("status") == "done":
        return record.get("retrained", {}).get(role, {})
    scope = record.get("scope", {})
    return scope.get("teachers", {}) if role == "teacher" else scope.get("students", {}).get(role, {})


def _sample_steps(record: dict, role: str) -> int | None:
    cost = record.get("cost", {}).get(role)
    return None if cost is None else int(cost["sample_steps"])


def _seconds(record: dict, role: str) -> float | None:
    measured = record.get("cost", {}).get(role)
    return None if measured is None else float(measured["seconds"])


SECONDS_COLUMNS = {role: f"{title(role, 'short')} seconds" for role in (TEACHER, PURGE, BASELINE)}
LEDGER_COLUMNS = (
    "Request", "Status", "Verified", "Samples", "Side", "Teachers retrained",
    *(f"{title(m, 'short')} students" for m in METHODS),
    *(f"{title(r, 'short')} sample-steps" for r in ROLE_ORDER),
    "PURGE predicted", "Full retrain (predicted)", *SECONDS_COLUMNS.values(), "Time")
INT_COLUMNS = (*(f"{title(r, 'short')} sample-steps" for r in ROLE_ORDER), "PURGE predicted",
               "Full retrain (predicted)")


def ledger_row(record: dict, locations: dict | None = None, running_request: int | None = None) -> dict:
    """One request as a row of the ledger table: per role, what it retrained and its measured sample-steps and
    seconds, a method's students only (cost.py); PURGE's students as predicted; the full retrain's prediction."""
    predicted = record.get("predicted", {})
    row = {"Request": int(record["request_id"]),
           "Time": str(record.get("started_at", "")).replace("T", " ").replace("+00:00", " UTC"),
           "Samples": sample_text(record.get("sample_ids", [])),
           "Side": side_text(record.get("sample_ids", []), locations),
           "Teachers retrained": steps_text(_retrained(record, "teacher"), "Teacher")}
    for method in METHODS:
        ran = method in record.get("methods", METHODS)
        row[f"{title(method, 'short')} students"] = steps_text(_retrained(record, method), "Student") if ran \
            else "not run"
    for role in ROLE_ORDER:
        row[f"{title(role, 'short')} sample-steps"] = _sample_steps(record, role)
    if predicted:
        row["PURGE predicted"] = predicted["purge"]["sample_steps"]
        row["Full retrain (predicted)"] = predicted["full_retrain"]["sample_steps"]
    for role, column in SECONDS_COLUMNS.items():
        row[column] = _seconds(record, role)
    row["Verified"] = verified_text(record)
    row["Status"] = status_text(record, running_request)
    return row


def ledger_frame(records: list[dict], locations: dict | None = None,
                 running_request: int | None = None) -> pd.DataFrame:
    """The ledger as a table: one row per request, in request order. Missing costs are <NA>."""
    frame = pd.DataFrame([ledger_row(r, locations, running_request) for r in records], columns=list(LEDGER_COLUMNS))
    for column in INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in SECONDS_COLUMNS.values():
        frame[column] = frame[column].astype("Float64")
    if locations is None:
        frame = frame.drop(columns=["Side"])
    return frame


# -- cumulative cost ----------------------------------------------------------------------------
def seconds_per_sample_step(records: list[dict]) -> float:
    """This run's measured seconds per sample-step: measured full retrains when any were run (the same
    mix of teachers and students as a full retrain), else every role of every finished request."""
    done = [r for r in records if r.get("status") == "done"]
    full = [r["full_retrain"] for r in done if r.get("full_retrain")]
    if full:
        pairs = [(f["seconds"], f["sample_steps"]) for f in full]
    else:
        pairs = [(c["seconds"], c["sample_steps"]) for r in done for c in r.get("cost", {}).values()]
    steps = sum(p[1] for p in pairs)
    return sum(p[0] for p in pairs) / steps if steps else math.nan


def request_costs(records: list[dict]) -> pd.DataFrame:
    """Per finished request: sample-steps and seconds of the teacher retraining, the PURGE students, the
    baseline students (each method's students only, cost.py) and a full retrain, in request order.

    Columns: request, method (role id: TEACHER, PURGE, BASELINE, FULL), unit ("sample_steps" or "seconds"),
    value, estimated. Full-retrain sample-steps are counted from the plan (exact) unless a full retrain was
    run and measured; its seconds are measured when it was run, else estimated (estimated=True) at
    seconds_per_sample_step.
    A method the request did not run has value NaN."""
    rate = seconds_per_sample_step(records)
    rows = []
    for record in (r for r in records if r.get("status") == "done"):
        request = int(record["request_id"])
        for role in (TEACHER, PURGE, BASELINE):
            steps, seconds = _sample_steps(record, role), _seconds(record, role)
            rows.append((request, role, "sample_steps", math.nan if steps is None else float(steps), False))
            rows.append((request, role, "seconds", math.nan if seconds is None else seconds, False))
        full = record.get("full_retrain")
        if full:
            rows += [(request, FULL, "sample_steps", float(full["sample_steps"]), False),
                     (request, FULL, "seconds", float(full["seconds"]), False)]
        else:
            steps = float(record["predicted"]["full_retrain"]["sample_steps"])
            rows += [(request, FULL, "sample_steps", steps, False), (request, FULL, "seconds", steps * rate, True)]
    return pd.DataFrame(rows, columns=["request", "method", "unit", "value", "estimated"])


def cumulative_cost_frame(records: list[dict]) -> pd.DataFrame:
    """request_costs summed over the history, with a request-0 origin (nothing spent yet) per line.

    Columns: request, method, unit, value, cumulative, estimated (this request's value is an estimate),
    cumulative_estimated (the running total includes one). A method missing from one request leaves
    its line NaN from there on."""
    costs = request_costs(records)
    parts = []
    for (method, unit), part in costs.groupby(["method", "unit"], sort=False):
        origin = pd.DataFrame([{"request": 0, "method": method, "unit": unit, "value": 0.0, "estimated": False}])
        part = pd.concat([origin, part], ignore_index=True)
        part["estimated"] = part["estimated"].astype(bool)
        part["cumulative"] = part["value"].cumsum(skipna=False)
        part["cumulative_estimated"] = part["estimated"].cummax()
        parts.append(part)
    columns = ["request", "method", "unit", "value", "cumulative", "estimated", "cumulative_estimated"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def cost_totals(frame: pd.DataFrame) -> pd.DataFrame:
    """The last cumulative value per method and unit: a small table beside the chart.

    Rows: indexed by role id (LINES), titled as every cost table titles them (cost.row_title); columns:
    Method, Sample-steps, Seconds, Seconds estimated (the total includes an estimate). The headline's ratios
    are computed from these totals (totals_of)."""
    last = frame.sort_values("request").groupby(["method", "unit"], sort=False).tail(1)
    table = last.pivot(index="method", columns="unit", values="cumulative")
    estimated = last[last["unit"] == "seconds"].set_index("method")["cumulative_estimated"]
    order = [m for m in LINES if m in table.index]
    table = table.reindex(order)
    return pd.DataFrame({"Method": [cost.row_title(m) for m in order],
                         "Sample-steps": table.get("sample_steps", pd.Series(dtype=float)).values,
                         "Seconds": table.get("seconds", pd.Series(dtype=float)).values,
                         "Seconds estimated": [bool(estimated.get(m, False)) for m in order]},
                        index=pd.Index(order, name="role"))


# -- accuracy over the history ----------------------------------------------------------------------
def accuracy_frame(records: list[dict]) -> pd.DataFrame:
    """Test accuracy per role over the history: request 0 is before the first request (its
    accuracy_before), then accuracy_after of each finished request; measured full retrains of the
    PURGE students as role FULL ("full_retrain").

    Columns: request, role (role id; vocabulary.title names it), test_accuracy (fraction; NaN when not
    measured)."""
    done = [r for r in records if r.get("status") == "done"]
    if not done:
        return pd.DataFrame(columns=["request", "role", "test_accuracy"])
    rows = _accuracy_rows(0, records[0].get("accuracy_before", {}))
    for record in done:
        rows += _accuracy_rows(int(record["request_id"]), record.get("accuracy_after", {}))
        full = (record.get("full_retrain") or {}).get("accuracy", {})
        if "purge" in full:
            rows.append({"request": int(record["request_id"]), "role": FULL,
                         "test_accuracy": _fraction(full["purge"])})
    return pd.DataFrame(rows, columns=["request", "role", "test_accuracy"])


def _accuracy_rows(request: int, accuracy: dict) -> list[dict]:
    roles = sorted(accuracy, key=lambda role: ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER))
    return [{"request": request, "role": role,
             "test_accuracy": _fraction(accuracy[role].get("test"))} for role in roles]


def _fraction(value) -> float:
    return math.nan if value is None else float(value)


# -- evidence beside cost ---------------------------------------------------------------------------
EVIDENCE_COLUMNS = ("Request", "Samples", "Cost (sample-steps)", "p before (min)", "p after (median)",
                    "p reference (median)", "Member-like", "Canaries")


def evidence_row(record: dict, report: dict) -> dict:
    """One finished request's cost (measured sample-steps of teacher + PURGE retraining) beside its evidence
    of forgetting (report: purge_engine.audit.report of the request): p-values of the forgotten samples on
    the teachers that held them, how many teacher and PURGE-student rows looked like members (p < 0.05)
    before and after, and the canary rate of the exposed PURGE students before → after."""
    frame = evidence.membership_frame(report)
    teachers = frame[frame["role"] == "teacher"]
    tested = frame[frame["role"].isin(evidence.STRIP_ROLES) & frame["p_after"].notna()]
    steps = [_sample_steps(record, "teacher"), _sample_steps(record, PURGE)]
    canaries = evidence.exposed_canary_rates(report)
    return {"Request": int(record["request_id"]), "Samples": len(record.get("sample_ids", [])),
            "Cost (sample-steps)": None if None in steps else sum(steps),
            "p before (min)": evidence.p_text(_stat(teachers["p_before"], "min")),
            "p after (median)": evidence.p_text(_stat(teachers["p_after"], "median")),
            "p reference (median)": evidence.p_text(_stat(teachers["p_reference"], "median"))
            if teachers["p_reference"].notna().any() else "not verified",
            "Member-like": f"{int((tested['p_before'] < evidence.ALPHA).sum())} → "
                                          f"{int((tested['p_after'] < evidence.ALPHA).sum())} of {len(tested)}"
            if len(tested) else "—",
            "Canaries": "—" if canaries is None else
            f"{evidence.rate_text(canaries[0])} → {evidence.rate_text(canaries[1])}"}


def _stat(values: pd.Series, how: str) -> float | None:
    values = values.dropna().astype(float)
    return None if values.empty else float(getattr(values, how)())


def evidence_frame(records: list[dict], reports: dict[int, dict]) -> pd.DataFrame:
    """evidence_row per finished request with a report (reports: request id -> audit.report), in request
    order; the canary column only when some request has canary rates."""
    rows = [evidence_row(r, reports[int(r["request_id"])]) for r in records
            if r.get("status") == "done" and int(r["request_id"]) in reports]
    frame = pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))
    frame["Cost (sample-steps)"] = frame["Cost (sample-steps)"].astype("Int64")
    if (frame["Canaries"] == "—").all():
        frame = frame.drop(columns=["Canaries"])
    return frame


def totals_of(totals: pd.DataFrame, unit: str = "Sample-steps") -> dict:
    """cost_totals as {role: {"sample_steps": total}}, what the headline's ratios (cost.py) divide."""
    return {role: {"sample_steps": float(value)} for role, value in totals[unit].items()}
