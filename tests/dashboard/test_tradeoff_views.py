"""Trade-offs page builders: the curves are theory.py's numbers, tables and figures from a real tiny sweep."""

import pytest

from dashboard.shared import figures
from dashboard.tradeoffs import figures as tradeoff_figures
from dashboard.tradeoffs import views as tv
from purge_engine import theory
from purge_engine.config import PurgeConfig
from purge_engine.plan import make_plan
from purge_engine.simulate import draw_requests, simulate_stream
from purge_engine.sweep import SWEEP_BASE, SweepGrid, run_sweep

BASE = PurgeConfig(student_data="disjoint", student_fraction=0.5)
PAPER = [1.48, 2.91, 5.65, 10.67, 19.2, 32]  # DESIGN section 7: N_t = 32, r = 1, N_s = 1, 2, 4, 8, 16, 32


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    grid = SweepGrid(SWEEP_BASE.replace(epochs=1), n_teachers=(2,), n_students=(1, 2), student_slices=(1,), requests=1)
    return run_sweep(grid, tmp_path_factory.mktemp("runs"))


def traces(fig, prefix: str) -> list:
    return [t for t in fig.data if (t.name or "").startswith(prefix)]


def test_theory_py_gives_the_design_numbers():
    assert [round(theory.teacher_side_speedup(32, s, 1), 2) for s in (1, 2, 4, 8, 16, 32)] == PAPER


def test_the_curves_are_theory_py_and_match_the_design_numbers():
    frame = tv.theory_frame(32, [1, 4])
    assert list(frame.loc[frame["r"] == 1, "N_s"]) == [1, 2, 4, 8, 16, 32]
    assert [round(v, 2) for v in frame.loc[frame["r"] == 1, "teacher_side"]] == PAPER
    for row in frame.itertuples():
        assert row.teacher_side == theory.teacher_side_speedup(32, row.N_s, row.r)
        assert row.student_side == theory.student_side_speedup(round(32 / row.N_s * row.r))
    fig = tradeoff_figures.speedup_figure(frame)
    teacher_curve, student_curve = traces(fig, "theory, r = 1")
    assert [round(y, 2) for y in teacher_curve.y] == PAPER
    assert list(student_curve.y) == list(frame.loc[frame["r"] == 1, "student_side"])
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 2, 4, 8, 16, 32]


def test_the_theory_table_has_one_row_per_divisor_and_storage_per_slice_count():
    table, notes = tv.theory_table(12, [1, 2], BASE, 1437)
    assert list(table["N_s"]) == theory.divisors(12) == [1, 2, 3, 4, 6, 12]
    assert list(table["c"]) == [12, 6, 4, 3, 2, 1]
    assert list(table.columns[2:]) == ["T× r=1", "T× r=2", "S× r=1", "S× r=2", "ckpts r=1", "ckpts r=2", "MB r=1",
                                       "MB r=2"]
    assert list(table["T× r=2"]) == [theory.teacher_side_speedup(12, s, 2) for s in table["N_s"]]
    assert list(table["S× r=2"]) == [theory.student_side_speedup(12 // s * 2) for s in table["N_s"]]
    # 12 teachers x 2 slices + 3 methods x (12 chunks x r) student steps, whatever N_s is
    assert set(table["ckpts r=1"]) == {12 * 2 + 3 * 12} and set(table["ckpts r=2"]) == {96}
    assert table["MB r=2"].iloc[0] > table["MB r=1"].iloc[0] > 0
    assert tv.theory_column_help("MB r=2").startswith("Megabytes")
    assert tv.theory_column_help("c").startswith("Teachers per")
    assert tv.theory_column_format("T× r=2") == "%.2f×" and tv.theory_column_format("N_s") is None
    assert notes == []


def test_a_layout_the_data_cannot_hold_gets_no_storage_and_a_note():
    table, notes = tv.theory_table(32, [64], BASE, 1437)
    assert table["ckpts r=64"].isna().all() and table["MB r=64"].isna().all()
    assert len(notes) == 1 and notes[0].startswith(
        "r = 64, N_s = 1, 2, 4, 8, 16, 32: n_students x chunks x student_slices: got 1 x 32 x 64")


def test_measured_points_come_from_the_sweep_with_min_max_bars(results):
    measured = tv.measured_frame(results)
    assert list(measured["N_s"]) == [1, 2] and list(measured["N_t"]) == [2, 2]
    assert list(measured["T× theory"]) == [theory.teacher_side_speedup(2, s, 1) for s in (1, 2)]
    assert list(measured.columns[-7:]) == ["teachers %", "PURGE %", "single-teacher %", "baseline %", "checkpoints",
                                           "MB", "seconds"]
    assert tv.measured_column_help("S× min") == "The smallest single request."
    fig = tradeoff_figures.speedup_figure(tv.sweep_curves(measured), measured)
    teacher_points, student_points = traces(fig, "measured")
    assert list(teacher_points.customdata) == [1, 2]
    assert list(teacher_points.x) == pytest.approx([1, 2])  # one (N_t, r) group: not dodged
    assert list(teacher_points.y) == list(measured["T×"])
    upper = measured["T× max"] - measured["T×"]
    assert list(teacher_points.error_y.array) == list(upper)
    assert list(student_points.y) == list(measured["S×"])
    assert len(traces(fig, "theory")) == 2


def test_request_and_accuracy_frames(results):
    requests = tv.request_frame(results)
    assert len(requests) == 4 and list(requests["Side"]) == ["teacher", "student"] * 2
    assert (requests["PURGE sample-steps"] == requests["PURGE predicted"]).all()
    assert requests.loc[requests["Side"] == "teacher", "Student"].isna().all()
    accuracy = tv.accuracy_frame(results)
    assert len(accuracy) == 2 * 4
    fig = tradeoff_figures.accuracy_figure(accuracy)
    assert {t.name for t in fig.data} == {"Teacher ensemble", "PURGE student", "Single-teacher PURGE",
                                          "Baseline student (SISA)"}
    assert set(accuracy["role"]) == set(tradeoff_figures.ACCURACY_ROLES)  # keyed by role id; colour follows role
    assert {t.name: t.line.color for t in fig.data}["PURGE student"] == figures.ROLE_COLOURS["purge"]
    assert "N_t 2 · N_s 1, 2 · r 1" in tv.sweep_label(results)


def test_the_stream_figure_marks_the_break_even_and_the_sentence_states_it():
    plan = make_plan(BASE.replace(n_teachers=32, n_students=8, student_slices=1), 1437)
    result = simulate_stream(plan, draw_requests(plan, 50))
    fig = tradeoff_figures.stream_figure(result)
    assert [t.name for t in fig.data][:3] == ["Teachers + PURGE students", "Teachers + baseline students",
                                              "Full retrain after every step"]  # each policy's whole bill
    assert list(fig.data[0].y) == result.bill("purge")
    star = traces(fig, "Break-even: Teachers + PURGE students")[0]
    assert list(star.x) == [result.break_even["purge"]]
    assert list(traces(fig, tv.FINAL_FULL)[0].y) == [result.final_full_retrain] * 2
    text = tradeoff_figures.break_even_text(result)
    assert f"than PURGE after request {result.break_even['purge']}," in text
    assert f"than the baseline after request {result.break_even['baseline']} (each bill" in text
    frame = tradeoff_figures.stream_frame(result)
    assert len(frame) == 50 and frame["PURGE students cumulative"].is_monotonic_increasing
    assert (frame["Teachers + PURGE students cumulative"]
            == frame["Teacher retraining cumulative"] + frame["PURGE students cumulative"]).all()


def test_no_break_even_is_said_plainly():
    plan = make_plan(BASE.replace(n_teachers=8, n_students=8), 1437)
    result = simulate_stream(plan, draw_requests(plan, 2))
    assert result.break_even["purge"] is None
    assert "than PURGE at no point in the 2 requests" in tradeoff_figures.break_even_text(result)
    assert not traces(tradeoff_figures.stream_figure(result), "Break-even: Teachers + PURGE students")


def test_a_sweeps_step_events_are_keyed_by_the_layout_last_announced():
    from purge_engine.events import PhaseEvent, StepEvent

    seen = []
    forward = tv.per_layout(seen.append)
    step = StepEvent("trained", "purge", 0, 1, 2)
    forward(step)
    forward(PhaseEvent("phase", "layout", "N_t = 2, N_s = 1, r = 1"))
    forward(step)
    assert [getattr(e, "role", None) for e in seen] == ["purge ()", None, "purge (N_t = 2, N_s = 1, r = 1)"]
    assert seen[2].constituent == 0 and seen[2].step == 1  # only the role changes
