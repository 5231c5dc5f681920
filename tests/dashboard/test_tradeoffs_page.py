"""The Trade-offs page through Streamlit's AppTest: theory curves and table, sweeps run by the button
(polled by rerunning, as run_every never fires here), cancel, and the request-stream simulator."""

import base64
import json

import numpy as np
import pytest

from dashboard.shared import cost
from purge_engine import theory
from purge_engine.sweep import list_sweeps
from tests.dashboard.conftest import app_on, run_until

# r = 2 after r = 1: a constituent meets more steps in a later layout (the job's progress must cope)
TINY_GRID = {"sweep_n_teachers": [2], "sweep_n_students": [1, 2], "sweep_student_slices": [1, 2]}
TINY_NUMBERS = {"sweep_epochs": 1, "sweep_requests": 1}


@pytest.fixture
def at(empty_runs_dir):
    app = app_on("tradeoffs", run=None)
    assert not app.exception
    return app


def charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(array) -> list:
    """A trace's x or y from the chart's JSON: Plotly writes numpy arrays as base64 typed arrays."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def trace_names(spec: dict) -> list[str]:
    return [t.get("name", "") for t in spec["data"]]


def theory_table(at):
    return next(df.value for df in at.dataframe if "c" in df.value.columns and "N_t" not in df.value.columns)


def set_tiny_grid(at):
    for key, value in TINY_GRID.items():
        at.multiselect(key=key).set_value(value)
    for key, value in TINY_NUMBERS.items():
        at.number_input(key=key).set_value(value)
    return at.run()



def test_theory_curves_and_a_table_row_per_divisor(at):
    assert at.number_input(key="tradeoff_n_teachers").value == 32
    assert at.multiselect(key="tradeoff_slices").value == [1, 2, 4]
    table = theory_table(at)
    assert list(table["N_s"]) == theory.divisors(32)
    assert [round(v, 2) for v in table["T× r=1"]] == [1.48, 2.91, 5.65, 10.67, 19.2, 32]
    theory_chart = charts(at)[0]
    assert trace_names(theory_chart)[:2] == ["theory, r = 1", "theory, r = 1"]  # teacher side, student side
    assert values(theory_chart["data"][0]["x"]) == [1, 2, 4, 8, 16, 32]
    assert [round(y, 2) for y in values(theory_chart["data"][0]["y"])] == [1.48, 2.91, 5.65, 10.67, 19.2, 32]
    assert not at.error


def test_changing_n_teachers_changes_the_rows(at):
    at.number_input(key="tradeoff_n_teachers").set_value(24).run()
    assert not at.exception
    assert list(theory_table(at)["N_s"]) == [1, 2, 3, 4, 6, 8, 12, 24]
    at.multiselect(key="tradeoff_slices").set_value([2]).run()
    assert [c for c in theory_table(at).columns if c.startswith("T×")] == ["T× r=2"]


def test_every_table_has_a_csv_download(at):
    assert {b.key for b in at.download_button} == {"tradeoff_theory_csv", "sim_csv"}


@pytest.mark.parametrize("changes, field", [
    ({"sweep_n_students": [16]}, "n_students: every value (16) is larger than every n_teachers (8)"),
    ({"sweep_n_teachers": []}, "n_teachers: got an empty list"),
    ({"sweep_n_teachers": [8, 16, 32]}, "grid: got 24 layouts, must be at most 16"),
    ({"sweep_n_teachers": [32], "sweep_student_slices": [8], "sweep_student_fraction": 0.1},
     "layout N_t = 32, N_s = 1, r = 8: n_students x chunks x student_slices: got 1 x 32 x 8 = 256 student slices"),
])
def test_a_bad_sweep_grid_is_an_error_naming_the_field(at, changes, field):
    for key, value in changes.items():
        widget = at.slider(key=key) if key == "sweep_student_fraction" else at.multiselect(key=key)
        widget.set_value(value)
    at.run()
    assert not at.exception
    assert any(field in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="sweep_run").disabled


def test_a_sweep_runs_from_the_button_is_stored_and_shown_next_time(at, empty_runs_dir):
    set_tiny_grid(at)
    assert not at.error and "4 layouts" in " ".join(c.value for c in at.caption)
    at.button(key="sweep_run").click().run()
    run_until(at, lambda a: not a.get("progress"))  # the job has ended, one way or another
    assert any("finished" in s.value for s in at.success), [e.value for e in at.error]
    [path] = list_sweeps(empty_runs_dir)
    assert at.selectbox(key="sweep_pick").value == path.parent.name
    sweep_chart = next(c for c in charts(at) if any(n.startswith("measured") for n in trace_names(c)))
    teacher_points = next(t for t in sweep_chart["data"] if t["name"] == "measured, r = 1")
    assert values(teacher_points["customdata"]) == [1, 2]  # x is dodged a little beside the r = 2 points
    assert {b.key for b in at.download_button} >= {"sweep_layouts_csv", "sweep_requests_csv", "sweep_accuracy_csv"}
    restarted = app_on("tradeoffs", run=None)  # a new session finds the stored sweep
    assert restarted.selectbox(key="sweep_pick").value == path.parent.name
    restarted.number_input(key="tradeoff_n_teachers").set_value(2).run()  # the theory chart overlays it too
    assert "measured, r = 1" in trace_names(charts(restarted)[0])
    assert not restarted.exception


def test_a_cancelled_sweep_says_so_and_stores_nothing(at, empty_runs_dir):
    at.button(key="sweep_run").click().run()  # the default grid: long enough to be cancelled midway
    assert at.get("progress") and at.button(key="sweep_run").disabled  # one sweep at a time
    at.button(key="sweep_cancel").click().run()
    run_until(at, lambda a: any("Sweep cancelled" in w.value for w in a.warning))
    assert list_sweeps(empty_runs_dir) == []
    scratch = empty_runs_dir / "sweeps"  # absent when the cancel came before the first layout started
    assert not scratch.exists() or not list(scratch.iterdir())  # scratch runs deleted too
    assert not at.button(key="sweep_run").disabled  # another sweep may start


def test_the_simulator_states_the_break_even(at):
    sentence = next(m.value for m in at.markdown if m.value.startswith("**Break-even:**"))
    assert "than PURGE after request" in sentence and "of the 50 requests" in sentence
    at.radio(key="sim_mode").set_value("batched").run()
    at.radio(key="sim_distribution").set_value("skewed").run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**Break-even:**") for m in at.markdown)
    assert [m.label for m in at.metric] == [
        "Teacher retraining: total", "PURGE students: total", "Baseline students (SISA): total", cost.ADVANTAGE,
        "Teachers + PURGE students: total", "Teachers + baseline students: total",
        "Full retrain after every step: total"]
