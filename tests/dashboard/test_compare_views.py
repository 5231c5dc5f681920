"""Compare page tables: built from ledger records, checked against the ledger they summarise."""

import math

import pandas as pd
import pytest

from dashboard.compare import views as cv
from purge_engine.plan import make_plan
from purge_engine.rundir.ledger import Ledger
from purge_engine.rundir.store import RunStore
from purge_engine.vocabulary import title
from tests.dashboard.conftest import RUN_NAME


def cost(seconds: float, steps: int) -> dict:
    return {"seconds": seconds, "sample_steps": steps, "label_forwards": 0, "steps_trained": 1}


def record(request_id: int, status: str = "done", full: dict | None = None, methods=("purge", "single_teacher",
                                                                                      "baseline"), **extra) -> dict:
    """A ledger record as Ledger.record merges it: teacher 10 sample-steps, PURGE 20, baseline 40."""
    rec = {"request_id": request_id, "status": status, "sample_ids": [request_id, 100 + request_id],
           "methods": list(methods), "started_at": f"2025-01-0{request_id}T10:00:00+00:00",
           "scope": {"teachers": {"1": 0}, "students": {"purge": {"0": 2}, "single_teacher": {"0": 2},
                                                        "baseline": {"0": 0, "1": 0}}},
           "predicted": {"teacher": {"sample_steps": 10}, "purge": {"sample_steps": 20},
                         "single_teacher": {"sample_steps": 20}, "baseline": {"sample_steps": 40},
                         "full_retrain": {"sample_steps": 100}},
           "accuracy_before": {"teacher": {"test": 0.9}, "purge": {"test": 0.8}, "baseline": {"test": 0.85}}}
    if status == "done":
        rec["cost"] = {"teacher": cost(1.0, 10), **{m: cost({"baseline": 4.0}.get(m, 2.0), {"baseline": 40}.get(m, 20))
                                                    for m in methods}}
        rec["retrained"] = {"teacher": {"1": 0}, "purge": {"0": 2}, "baseline": {"0": 0, "1": 0}}
        rec["accuracy_after"] = {"baseline": {"test": 0.84}, "teacher": {"test": 0.9 - request_id / 100},
                                 "purge": {"test": 0.81}}
    if full:
        rec["full_retrain"] = full
    rec.update(extra)
    return rec


@pytest.fixture
def records():
    full = {"seconds": 20.0, "sample_steps": 100, "accuracy": {"teacher": 0.9, "purge": 0.81}}
    return [record(1), record(2, full=full, exact=True, equal=True), record(3, exact=False, equal=False),
            record(4, status="running")]


# -- the ledger table -------------------------------------------------------------------------------
def test_ledger_frame_has_one_row_per_request_with_its_costs(records):
    frame = cv.ledger_frame(records)
    assert frame["Request"].tolist() == [1, 2, 3, 4]
    assert frame["Teachers sample-steps"].tolist()[:3] == [10, 10, 10]
    assert frame["PURGE sample-steps"].tolist()[:3] == [20, 20, 20]
    assert frame["Baseline (SISA) sample-steps"].tolist()[:3] == [40, 40, 40]
    assert frame["Teachers sample-steps"].isna().tolist() == [False, False, False, True]  # not finished: no cost
    assert frame["PURGE predicted"].tolist() == [20] * 4  # students only: the teachers have their own column
    assert frame["Full retrain (predicted)"].tolist() == [100] * 4
    assert frame["PURGE seconds"].tolist()[:3] == [2.0, 2.0, 2.0]
    assert frame["Teachers seconds"].tolist()[:3] == [1.0, 1.0, 1.0]
    assert frame["Verified"].tolist() == ["not verified", "exact", "differs", "not verified"]
    assert frame["Status"].tolist() == ["done", "done", "done", "pending"]
    assert cv.ledger_frame(records, running_request=4)["Status"].tolist()[-1] == "running"
    assert frame["Teachers retrained"][0] == "Teacher 2 from scratch"
    assert frame["PURGE students"][0] == "Student 1 from step 3"
    assert frame["Baseline (SISA) students"][0] == "Students 1–2 from scratch"
    assert frame["Time"][0] == "2025-01-01 10:00:00 UTC"
    assert "Side" not in frame.columns  # no locations given


def test_ledger_side_reads_where_the_samples_sat():
    locations = {"teacher": pd.Series([0, -1, 2]).to_numpy(), "student": pd.Series([-1, 1, 0]).to_numpy()}
    assert cv.side_text([0], locations) == "teacher"
    assert cv.side_text([1], locations) == "student"
    assert cv.side_text([0, 1], locations) == "teacher + student"
    assert cv.side_text([2], locations) == "teacher + student"


def test_steps_text_groups_constituents_by_first_step():
    assert cv.steps_text({}, "Student") == "none"
    assert cv.steps_text({"2": 4}, "Student") == "Student 3 from step 5"
    assert cv.steps_text({"0": 0, "1": 0, "3": 0}, "Teacher") == "Teachers 1, 2, 4 from scratch"
    assert cv.steps_text({"1": 2, "0": 0}, "Student") == "Student 1 from scratch; Student 2 from step 3"
    assert cv.sample_text(range(10)) == "0, 1, 2, 3, 4, 5, 6, 7, … (10 in all)"


def test_a_method_not_run_is_shown_as_such():
    frame = cv.ledger_frame([record(1, methods=("purge",))])
    assert frame["Baseline (SISA) students"][0] == "not run"
    assert frame["Baseline (SISA) sample-steps"].isna()[0]


# -- cumulative cost ------------------------------------------------------------------------------
def test_cumulative_cost_is_monotone_and_ends_at_the_totals(records):
    frame = cv.cumulative_cost_frame(records)
    done = [r for r in records if r["status"] == "done"]
    for (method, unit), part in frame.groupby(["method", "unit"]):
        part = part.sort_values("request")
        assert part["request"].tolist() == [0, 1, 2, 3]  # the origin, then each finished request
        assert part["cumulative"].iloc[0] == 0
        assert part["cumulative"].is_monotonic_increasing, (method, unit)
        assert part["cumulative"].iloc[-1] == pytest.approx(part["value"].sum())
    steps = frame[frame["unit"] == "sample_steps"].groupby("method")["cumulative"].max()
    assert steps[cv.PURGE] == sum(r["cost"]["purge"]["sample_steps"] for r in done)  # a method: its students only
    assert steps[cv.TEACHER] == 3 * 10  # the teacher retraining: its own line
    assert steps[cv.BASELINE] == 3 * 40
    assert steps[cv.FULL] == 3 * 100


def test_full_retrain_seconds_are_measured_where_run_and_estimated_elsewhere(records):
    frame = cv.cumulative_cost_frame(records)
    full = frame[(frame["method"] == cv.FULL) & (frame["unit"] == "seconds")].set_index("request")
    rate = cv.seconds_per_sample_step(records)
    assert rate == pytest.approx(20.0 / 100)  # from the measured full retrain
    assert full.loc[2, "value"] == 20.0 and not full.loc[2, "estimated"]
    assert full.loc[1, "value"] == pytest.approx(100 * rate) and full.loc[1, "estimated"]
    assert full["cumulative_estimated"].tolist() == [False, True, True, True]
    totals = cv.cost_totals(frame)  # indexed by role id, titled for the screen
    assert totals.loc[cv.FULL, "Seconds estimated"] and not totals.loc[cv.PURGE, "Seconds estimated"]
    assert totals.loc[cv.PURGE, "Sample-steps"] == 60
    assert totals["Method"].tolist() == ["Teacher retraining", "PURGE students", "Baseline students (SISA)",
                                         "Full retrain"]


def test_without_a_full_retrain_the_rate_comes_from_the_requests():
    records = [record(1), record(2)]
    # teacher 10 steps in 1 s, PURGE and single-teacher 20 in 2 s each, baseline 40 in 4 s: 0.1 s per step
    assert cv.seconds_per_sample_step(records) == pytest.approx(0.1)
    assert math.isnan(cv.seconds_per_sample_step([record(1, status="running")]))


def test_a_method_missing_from_a_request_breaks_its_line():
    frame = cv.cumulative_cost_frame([record(1), record(2, methods=("purge",)), record(3)])
    baseline = frame[(frame["method"] == cv.BASELINE) & (frame["unit"] == "sample_steps")]
    assert baseline["cumulative"].tolist()[:2] == [0, 40]
    assert baseline["cumulative"].isna().tolist()[2:] == [True, True]


# -- accuracy -------------------------------------------------------------------------------------
def test_accuracy_starts_before_the_first_request(records):
    frame = cv.accuracy_frame(records)
    teacher = frame[frame["role"] == "teacher"]  # roles by id: titles are the figure's business
    assert teacher["request"].tolist() == [0, 1, 2, 3]
    assert teacher["test_accuracy"].tolist() == pytest.approx([0.9, 0.89, 0.88, 0.87])
    assert frame["role"].drop_duplicates().tolist()[:3] == ["teacher", "purge", "baseline"]
    full = frame[frame["role"] == cv.FULL]
    assert full["request"].tolist() == [2] and full["test_accuracy"].tolist() == [0.81]
    assert cv.accuracy_frame([record(1, status="running")]).empty


# -- against a real ledger -------------------------------------------------------------------------
def test_frames_from_a_real_ledger_match_its_entries(trained_runs_dir):
    run = trained_runs_dir / RUN_NAME
    ledger = Ledger(run / "ledger.sqlite")
    ids = sorted({e["request_id"] for e in ledger.entries()})
    records = [ledger.record(r) for r in ids]
    store = RunStore(run)
    plan = store.read_plan()
    locations = make_plan(store.read_config(), plan.n_pool).locations()
    frame = cv.ledger_frame(records, locations)
    assert frame["Request"].tolist() == ids == [1, 2]
    assert frame["Side"].tolist() == ["teacher", "student"]  # the fixture's two requests
    rows = frame.set_index("Request")
    for request_id in ids:
        measured = {e["kind"]: e["body"] for e in ledger.entries(request_id)}["done"]["cost"]
        for role in ("teacher", "purge", "single_teacher", "baseline"):
            assert rows.loc[request_id, f"{title(role, 'short')} sample-steps"] == measured[role]["sample_steps"], role
    cumulative = cv.cumulative_cost_frame(records)
    purge = cumulative[(cumulative["method"] == cv.PURGE) & (cumulative["unit"] == "sample_steps")]
    total = sum(r["cost"]["purge"]["sample_steps"] for r in records)
    assert purge["cumulative"].iloc[-1] == total
    assert purge["cumulative"].is_monotonic_increasing
    # PURGE's measured sample-steps are what the plan predicted before each request ran
    assert frame["PURGE sample-steps"].tolist() == frame["PURGE predicted"].tolist()
