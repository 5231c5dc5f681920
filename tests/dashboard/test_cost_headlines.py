"""One definition of cost on every screen (issue 26): every headline ratio equals the ratio of the totals the
page draws under it, read back from what the page drew (AppTest metrics, tables and chart JSON).

PURGE's advantage = the "Baseline students (SISA)" row ÷ the "PURGE students" row; the full-retrain ratio =
"Full retrain" ÷ ("Teacher retraining" + "PURGE students"). A method's row counts its students only."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.learn import lesson
from dashboard.shared import cost, views
from purge_engine import METHODS
from purge_engine.datasets.readers import load_dataset
from purge_engine.plan import make_plan, predicted_cost, retrain_scope
from tests.dashboard import APP
from tests.dashboard.conftest import app_on

ROWS = {role: cost.row_title(role) for role in cost.ROLES}


def number(value) -> float:
    """A drawn cell: a number, or the shown table's "1,234" text ("not run": NaN)."""
    if isinstance(value, str):
        return float("nan") if value == "not run" else float(value.replace(",", ""))
    return float(value)


def column(frame, name: str) -> dict[str, float]:
    """{row title: value} of a drawn cost table's column."""
    return {title: number(v) for title, v in zip(frame["Method"], frame[name], strict=True)}


def metric(block, label: str) -> str:
    return next(m.value for m in block.metric if m.label == label)


def ratio(a: float, b: float) -> str:
    return cost.ratio_text(a / b)


def advantage_of(rows: dict[str, float]) -> str:
    return ratio(rows[ROWS["baseline"]], rows[ROWS["purge"]])


def table_with(at, name: str, without: str | None = None):
    return next(df.value for df in at.dataframe if name in df.value.columns
                and (without is None or without not in df.value.columns))


def chart(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if key in c.proto.id).proto.spec)


def ys(trace: dict) -> list[float]:
    y = trace["y"]
    if isinstance(y, dict) and "bdata" in y:  # Plotly writes numpy arrays as base64 typed arrays
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return list(y)


# -- Forget --------------------------------------------------------------------------------------------
def test_forget_preview_headline_divides_the_table_under_it(runs_dir):
    at = app_on("forget")
    free = [int(box.key[5:]) for box in at.checkbox if box.key.startswith("pick_") and not box.disabled]
    at.session_state["selected"] = free[:3]
    at.run()
    assert not at.exception
    rows = column(table_with(at, "Predicted sample-steps", without="Measured sample-steps"), "Predicted sample-steps")
    assert list(rows) == [ROWS[r] for r in ("teacher", *METHODS, "full_retrain")]
    headline = metric(at.get_by_key("advantage_preview"), cost.ADVANTAGE)
    assert headline.endswith("×") and headline == advantage_of(rows)


def test_forget_results_headline_divides_the_table_under_it(runs_dir):
    at = app_on("forget")  # the fixture's latest request, no selection: its results alone
    assert not at.exception
    table = table_with(at, "Measured sample-steps")
    predicted, measured = column(table, "Predicted sample-steps"), column(table, "Measured sample-steps")
    measured.pop(ROWS["full_retrain"])  # not run here
    assert measured == {k: v for k, v in predicted.items() if k in measured}  # students only on both sides
    headline = metric(at.get_by_key("advantage_results"), cost.ADVANTAGE)
    assert headline.endswith("×") and headline == advantage_of(measured)
    for method in METHODS:  # the per-row full-retrain ratio divides the rows above it, too
        bill = predicted[ROWS["teacher"]] + predicted[ROWS[method]]
        shown = table.set_index("Method").loc[ROWS[method], cost.FULL_COLUMN]
        assert shown == ratio(predicted[ROWS["full_retrain"]], bill)


# -- Compare -------------------------------------------------------------------------------------------
def test_compare_headlines_divide_the_totals_and_the_chart_under_them(runs_dir):
    at = app_on("compare")
    assert not at.exception
    totals = column(table_with(at, "Seconds estimated"), "Sample-steps")
    assert list(totals) == [ROWS[r] for r in ("teacher", "purge", "baseline", "full_retrain")]
    assert metric(at, cost.ADVANTAGE) == advantage_of(totals) != "–"
    full = ratio(totals[ROWS["full_retrain"]], totals[ROWS["teacher"]] + totals[ROWS["purge"]])
    assert metric(at, cost.FULL_RATIO) == full
    lines = {t["name"]: ys(t)[-1] for t in chart(at, "compare_cost_chart")["data"]}
    assert lines == pytest.approx(totals)  # each line ends at its total


# -- Trade-offs: the request-stream simulator -------------------------------------------------------------
def test_the_simulator_headline_divides_the_totals_beside_it_and_the_chart_ends_at_its_own(empty_runs_dir):
    at = app_on("tradeoffs", run=None)
    assert not at.exception
    drawn = {m.label.removesuffix(": total"): number(m.value) for m in at.metric if m.label.endswith(": total")}
    assert metric(at, cost.ADVANTAGE) == ratio(drawn[ROWS["baseline"]], drawn[ROWS["purge"]])
    for method, line in (("purge", "Teachers + PURGE students"), ("baseline", "Teachers + baseline students")):
        assert drawn[line] == drawn[ROWS["teacher"]] + drawn[ROWS[method]]  # a policy's bill: its two rows
    lines = {t["name"]: ys(t)[-1] for t in chart(at, "sim_chart")["data"] if t.get("mode") == "lines+markers"}
    assert lines == {name: drawn[name] for name in lines} and len(lines) == 3


# -- Learn: step 3's table, step 6's table and question count the same thing ----------------------------------
@pytest.fixture(scope="module")
def pristine():
    return make_plan(lesson.LESSON_CONFIG, load_dataset("digits"))


def test_learn_step_3_headline_divides_its_table(empty_runs_dir):
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params["step"] = "3"
    at.session_state["learn_revealed_3"] = "1"  # a guess was checked: the plan shows
    at.switch_page("app_pages/learn.py")
    at.run()
    assert not at.exception
    rows = column(table_with(at, "Predicted sample-steps"), "Predicted sample-steps")
    assert list(rows) == [ROWS[r] for r in ("teacher", "purge", "baseline", "full_retrain")]
    assert metric(at, cost.ADVANTAGE) == advantage_of(rows)


def test_learn_steps_3_and_6_price_the_teacher_side_request_alike_and_6_asks_what_its_table_counts(pristine):
    x = lesson.lesson_samples(pristine)["teacher_side"]
    predicted = predicted_cost(pristine, retrain_scope(pristine, [x]))
    step_3 = cost.cost_frame(predicted, ("purge", "baseline")).set_index("Method")
    served = {"sample_ids": [x], "methods": list(METHODS), "predicted": predicted,  # step 6, served first
              "cost": {role: {"sample_steps": predicted[role]["sample_steps"], "seconds": 1.0,
                              "label_forwards": predicted[role]["label_forwards"]} for role in ("teacher", *METHODS)}}
    step_6 = views.request_cost_table(served).set_index("Method")
    shared = step_3.index
    assert (step_6.loc[shared, "Predicted sample-steps"] == step_3["Predicted sample-steps"]).all()
    assert (step_6.loc[shared, "Constituents retrained"] == step_3["Constituents retrained"]).all()
    assert not lesson.priced_apart(pristine, served)
    q = lesson.question(6, pristine)
    assert q.answer == str(step_6.loc[ROWS["purge"], "Constituents retrained"]) == "1"
    y = lesson.lesson_samples(pristine)["student_side"]
    later = pristine.without([y])  # step 7 served first: step 6 is priced on the plan without #y, and says so
    assert lesson.priced_apart(pristine, {**served, "predicted": predicted_cost(later, retrain_scope(later, [x]))})
