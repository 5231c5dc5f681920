"""Sweeps (grid validation, a real tiny sweep, cancel) and the request-stream simulator."""

import json

import numpy as np
import pytest

from purge_engine import theory
from purge_engine.config import PurgeConfig
from purge_engine.events import LabelEvent, PhaseEvent, StepEvent
from purge_engine.plan import METHODS, make_plan
from purge_engine.simulate import draw_requests, simulate_stream, teacher_weights
from purge_engine.sweep import (
    MAX_LAYOUTS,
    RESULTS,
    SWEEP_BASE,
    TIMING,
    Layout,
    Stopwatch,
    SweepGrid,
    from_scratch,
    list_sweeps,
    load_sweep,
    plan_sweep,
    predicted_sample_steps,
    request_samples,
    run_sweep,
    sweeps_dir,
)
from purge_engine.training import Cancelled

TINY = SweepGrid(SWEEP_BASE.replace(epochs=1), n_teachers=(2,), n_students=(1, 2), student_slices=(1,), requests=1)
ROLES = ("teacher", "purge", "single_teacher", "baseline")


# -- the grid ------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"n_teachers": ()}, r"n_teachers: got an empty list, choose at least one integer in \[1, "),
    ({"n_students": []}, r"n_students: got an empty list"),
    ({"student_slices": (0,)}, r"student_slices: got 0, must be an integer in \[1, "),
    ({"student_slices": (10_001,)}, r"student_slices: got 10001, must be an integer in \[1, 10000\]"),  # metadata
    ({"n_teachers": (2.5,)}, r"n_teachers: got 2.5, must be an integer in \[1, 100000\]"),
    ({"n_teachers": (2,), "n_students": (4, 8)}, r"n_students: every value \(4, 8\) is larger than every "
                                                 r"n_teachers \(2\)"),
    ({"n_teachers": (4, 8), "n_students": (1, 2, 3, 4), "student_slices": (1, 2, 3)},
     rf"grid: got 24 layouts, must be at most {MAX_LAYOUTS}"),
    ({"n_teachers": (1000,), "n_students": (1,)}, r"layout N_t = 1000, N_s = 1, r = 1: n_teachers x teacher_slices: "
                                                  r"got 1000 x 1 = 1000 teacher slices, must be at most the 702"),
    ({"n_students": (8,), "student_slices": (200,)}, r"layout N_t = 8, N_s = 8, r = 200: n_students x chunks x "
                                                     r"student_slices: got 8 x 1 x 200"),
    ({"base": SWEEP_BASE.replace(student_fraction=1.0)}, r"student_fraction: got 1.0, must be in \(0, 1\) when "
                                                          r"student_data is 'disjoint'"),
    ({"base": SWEEP_BASE.replace(student_data="overlap")}, r"student_data: got 'overlap', must be disjoint in a sweep"),
    ({"requests": 0}, r"requests: got 0, must be an integer in \[1, 20\]"),
    ({"base": SWEEP_BASE.replace(epochs=0)}, r"epochs: got 0, must be an integer in \[1, "),
    ({"base": SWEEP_BASE.replace(dataset="nope")}, r"dataset: got 'nope', must be one of digits"),
    ({"base": SWEEP_BASE.replace(threads=-1)}, r"threads: got -1, must be an integer in \[0, 256\]"),
    ({"methods": ("purge",)}, r"methods: got \['purge'\], must be distinct methods among purge, single_teacher, "
                              r"baseline, purge and baseline included"),
    ({"methods": ("purge", "baseline", "purge")}, r"methods: got \['purge', 'baseline', 'purge'\]"),
    ({"methods": ("purge", "baseline", "nope")}, r"methods: got \['purge', 'baseline', 'nope'\]"),
])
def test_bad_grids_say_which_field_and_the_allowed_range(changes, message):
    with pytest.raises(ValueError, match=message):
        SweepGrid(**changes).validate()


def test_pairs_with_more_students_than_teachers_are_skipped_with_a_note():
    grid = SweepGrid(n_teachers=(4,), n_students=(2, 8, 4), student_slices=(1,)).validate()
    assert grid.layouts() == [Layout(4, 2, 1), Layout(4, 4, 1)]
    assert grid.skipped() == ["N_t = 4, N_s = 8: more students than teachers"]


def test_the_default_grid_is_valid_and_round_trips_through_json():
    grid = SweepGrid().validate()
    assert len(grid.layouts()) == 8
    assert SweepGrid.from_dict(json.loads(json.dumps(grid.to_dict()))) == grid


def test_every_layout_is_the_base_config_with_its_three_axes_replaced():
    base = SWEEP_BASE.replace(epochs=2, seed=5, student_fraction=0.4)
    grid = SweepGrid(base, n_teachers=(4,), n_students=(2,), student_slices=(3,)).validate()
    assert grid.config(Layout(4, 2, 3)) == base.replace(n_teachers=4, n_students=2, student_slices=3)
    assert SweepGrid().config(Layout(8, 2, 1)).fingerprint() == PurgeConfig(  # the grid's former defaults
        n_teachers=8, n_students=2, teacher_slices=1, student_slices=1, student_data="disjoint", student_fraction=0.5,
        epochs=4, seed=0, threads=1).fingerprint()


def test_a_grid_stored_flat_by_an_older_sweep_still_loads():
    flat = {"dataset": "digits", "n_teachers": [2], "n_students": [1, 2], "student_slices": [1], "teacher_slices": 1,
            "epochs": 1, "requests": 1, "student_fraction": 0.5, "seed": 0, "threads": 1}
    assert SweepGrid.from_dict(flat) == TINY


def test_request_samples_are_stratified_seeded_and_on_one_side_only():
    plan = make_plan(SweepGrid().config(Layout(8, 2, 1)), 1437)
    where = plan.locations()
    requests = request_samples(plan, 8, seed=0)
    teacher_ids = [i for side, i in requests if side == "teacher"]
    student_ids = [i for side, i in requests if side == "student"]
    assert sorted(where["teacher"][teacher_ids]) == list(range(8))  # K = N_t: every teacher exactly once
    assert all(where["student"][i] < 0 for i in teacher_ids) and all(where["teacher"][i] < 0 for i in student_ids)
    assert sorted(where["student"][student_ids]) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert len(set(teacher_ids + student_ids)) == 16
    assert request_samples(plan, 8, seed=0) == requests and request_samples(plan, 8, seed=1) != requests


@pytest.mark.parametrize("n_students, k", [(1, 8), (2, 4), (4, 8), (1, 5)])
def test_request_samples_are_stratified_over_the_position_that_decides_the_cost(n_students, k):
    # teacher side: the teacher's place in its student's group (PURGE retrains from the chunk it labels first);
    # student side: the sample's step in its student (the rollback point). K strata of those positions, one hit each.
    plan = make_plan(SweepGrid().config(Layout(32, n_students, 1)), 1437)
    where, c = plan.locations(), 32 // n_students
    place = {t: p for group in plan.mapping for p, t in enumerate(group)}
    requests = request_samples(plan, k, seed=3)
    teacher_places = sorted(place[where["teacher"][i]] for side, i in requests if side == "teacher")
    student_steps = sorted(where["chunk"][i] for side, i in requests if side == "student")
    strata = [int(s * k // c) for s in range(c)]  # the stratum of each position, for K <= c
    assert sorted(strata[p] for p in teacher_places) == sorted(strata[s] for s in student_steps) == list(range(k))
    assert len({i for _, i in requests}) == 2 * k


def test_a_grid_may_serve_purge_and_baseline_alone():
    grid = SweepGrid(n_teachers=(4,), n_students=(2,), student_slices=(1,), methods=["purge", "baseline"]).validate()
    assert grid.methods == ("purge", "baseline") and grid.roles == ("teacher", "purge", "baseline")
    assert SweepGrid.from_dict(json.loads(json.dumps(grid.to_dict()))) == grid
    assert SweepGrid.from_dict({k: v for k, v in grid.to_dict().items() if k != "methods"}).methods == METHODS
    [fewer], [every] = plan_sweep(grid), plan_sweep(SweepGrid(n_teachers=(4,), n_students=(2,), student_slices=(1,)))
    assert fewer.requests == every.requests and 0 < fewer.predicted_sample_steps() < every.predicted_sample_steps()


# -- seconds ------------------------------------------------------------------------------------------
def step(kind, role="purge", constituent=0, seconds=0.0, worker=""):
    return StepEvent(kind, role, constituent, 0, 1, 10, 1, seconds, worker=worker)


def test_the_stopwatch_adds_event_seconds_per_constituent_and_labels_once():
    watch = Stopwatch()
    for event in [step("training"), LabelEvent("labelled", "purge", 0, 0, 0, (0,), 10, 0.25),
                  LabelEvent("label-reused", "purge", 0, 0, 0, (), 10), step("trained", seconds=1.0),
                  step("training", constituent=1), step("trained", constituent=1, seconds=2.0),
                  step("training", "teacher"), step("trained", "teacher", seconds=3.0, worker="node:1")]:
        watch(event)
    assert watch.totals("purge", 0)["wall"] == 1.0 and watch.totals("purge", 0)["label_wall"] == 0.25
    assert watch.totals("purge") == {**watch.totals("purge"), "wall": 3.0, "label_wall": 0.25}
    assert 0 <= watch.totals("purge")["label_cpu"] <= watch.totals("purge")["cpu"]
    assert watch.totals("teacher") == {"wall": 3.0, "label_wall": 0.0, "cpu": 0.0, "label_cpu": 0.0}  # ran elsewhere
    assert watch.totals("baseline") == dict.fromkeys(TIMING, 0.0)
    # a student from scratch: its training without labels, plus the labels the request recomputed
    assert from_scratch({"wall": 5.0, "label_wall": 1.0, "cpu": 4.0, "label_cpu": 0.5},
                        {"wall": 2.0, "label_wall": 0.25, "cpu": 2.0, "label_cpu": 0.25}) == {
        "wall": 4.25, "label_wall": 0.25, "cpu": 3.75, "label_cpu": 0.25}


# -- a real sweep ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    events = []
    results = run_sweep(TINY, root, on_event=events.append)
    return root, results, events


def test_a_sweep_stores_one_record_per_layout_and_cleans_up(tiny_sweep):
    root, results, _ = tiny_sweep
    [path] = list_sweeps(root)
    assert path.name == RESULTS and path.parent.name == results["sweep_id"]
    assert load_sweep(path) == json.loads(json.dumps(results)) == load_sweep(path.parent)
    assert [rec["layout"] for rec in results["layouts"]] == [{"n_teachers": 2, "n_students": s, "student_slices": 1}
                                                             for s in (1, 2)]
    assert sorted(p.name for p in path.parent.iterdir()) == [RESULTS]  # scratch runs deleted
    assert SweepGrid.from_dict(results["grid"]) == TINY


def test_measured_sample_steps_equal_the_plan_and_the_progress_total(tiny_sweep):
    _, results, events = tiny_sweep
    for rec in results["layouts"]:
        assert [r["side"] for r in rec["requests"]] == ["teacher", "student"]
        for req in rec["requests"]:
            assert {role: req["measured"][role]["sample_steps"] for role in ROLES} == req["predicted"]
            assert req["speedup"] == req["reference_sample_steps"] / req["measured"]["purge"]["sample_steps"]
        teacher_req = rec["requests"][0]
        assert teacher_req["reference_sample_steps"] == teacher_req["measured"]["baseline"]["sample_steps"]
        assert set(rec["accuracy"]) == set(ROLES) and all(0 <= a <= 1 for a in rec["accuracy"].values())
        layout = rec["layout"]
        assert rec["theory"]["teacher_side_speedup"] == theory.teacher_side_speedup(
            layout["n_teachers"], layout["n_students"], layout["student_slices"])
    trained = sum(e.samples * e.epochs for e in events if isinstance(e, StepEvent) and e.kind == "trained")
    assert trained == predicted_sample_steps(TINY)
    assert any(isinstance(e, PhaseEvent) and e.name.startswith("layout 2 of 2") for e in events)


def test_one_isolated_student_per_teacher_gives_the_full_teacher_side_speed_up(tiny_sweep):
    _, results, _ = tiny_sweep
    c1 = next(rec for rec in results["layouts"] if rec["layout"]["n_students"] == 2)
    # N_s = N_t = 2: a teacher-side request retrains one PURGE student of two; the baseline retrains both.
    assert c1["summary"]["teacher"]["speedup"] == pytest.approx(2.0, rel=0.02)


def test_every_request_is_timed_per_role_and_against_its_reference(tiny_sweep):
    _, results, _ = tiny_sweep
    for rec in results["layouts"]:
        assert set(rec["train_timing"]) == set(ROLES) and rec["train_timing"]["purge"]["wall"] > 0
        for req in rec["requests"]:
            timing = req["timing"]
            assert set(timing) == set(ROLES) and all(set(t) == set(TIMING) for t in timing.values())
            assert timing["purge"]["wall"] > 0 and 0 <= timing["purge"]["label_wall"] <= timing["purge"]["wall"]
            assert 0 <= timing["purge"]["label_cpu"] <= timing["purge"]["cpu"]
            if req["side"] == "teacher":
                assert req["reference_timing"] == timing["baseline"]
            elif rec["layout"]["n_students"] == 1:  # the one student's training is the role's
                assert req["reference_timing"] == from_scratch(rec["train_timing"]["purge"], timing["purge"])
        for side, summary in rec["summary"].items():
            [req] = [r for r in rec["requests"] if r["side"] == side]
            assert summary["speedup_wall"] == req["reference_timing"]["wall"] / req["timing"]["purge"]["wall"]


def test_a_sweep_of_fewer_methods_trains_and_serves_only_those(tmp_path):
    grid = SweepGrid(SWEEP_BASE.replace(epochs=1), n_teachers=(2,), n_students=(2,), student_slices=(1,), requests=1,
                     methods=("purge", "baseline"))
    events = []
    [rec] = run_sweep(grid, tmp_path, on_event=events.append)["layouts"]
    assert set(rec["accuracy"]) == set(rec["train"]) == set(rec["train_timing"]) == {"teacher", "purge", "baseline"}
    assert all(set(req["measured"]) == set(req["predicted"]) == set(grid.roles) for req in rec["requests"])
    assert {e.role for e in events if isinstance(e, StepEvent)} == {"teacher", "purge", "baseline"}
    trained = sum(e.samples * e.epochs for e in events if isinstance(e, StepEvent) and e.kind == "trained")
    assert trained == predicted_sample_steps(grid)


def _stop_after(predicate):
    seen = []

    def on_event(event):
        seen.append(predicate(event))

    return on_event, lambda: any(seen)


@pytest.mark.parametrize("predicate", [
    lambda e: True,  # at the first event
    lambda e: isinstance(e, PhaseEvent) and "request" in e.name,  # while serving requests
], ids=["first-event", "during-requests"])
def test_a_cancelled_sweep_raises_and_leaves_nothing(tmp_path, predicate):
    on_event, should_stop = _stop_after(predicate)
    with pytest.raises(Cancelled):
        run_sweep(TINY, tmp_path, on_event=on_event, should_stop=should_stop)
    assert list_sweeps(tmp_path) == []
    assert list(sweeps_dir(tmp_path).iterdir()) == []  # no results, no scratch runs


def test_load_sweep_refuses_what_is_not_a_sweep(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_sweep(tmp_path / "nothing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_sweep(tmp_path / "bad.json")


def test_plan_sweep_validates_first():
    with pytest.raises(ValueError, match="n_students: every value"):
        plan_sweep(SweepGrid(n_teachers=(1,), n_students=(2,)))


# -- the request-stream simulator ------------------------------------------------------------------
def stream_plan(n_teachers=8, n_students=2, **changes):
    config = PurgeConfig(n_teachers=n_teachers, n_students=n_students, student_data="disjoint",
                         student_fraction=0.5, **changes)
    return make_plan(config, 1437)


def test_cumulative_costs_grow_and_purge_never_costs_more_than_the_baseline():
    plan = stream_plan()
    result = simulate_stream(plan, draw_requests(plan, 30, seed=3))
    for name in ("purge", "baseline", "full_retrain"):
        cumulative = [row[f"cumulative_{name}"] for row in result.rows]
        assert all(b > a for a, b in zip(cumulative, cumulative[1:], strict=False)), name
    assert all(row["purge"] <= row["baseline"] for row in result.rows)
    assert [row["requests"] for row in result.rows] == list(range(1, 31))


def test_batched_costs_no_more_than_sequential():
    plan = stream_plan(student_slices=2)
    ids = draw_requests(plan, 24, distribution="skewed", skew=1.5, seed=1)
    sequential, batched = simulate_stream(plan, ids), simulate_stream(plan, ids, "batched", 5)
    assert [row["requests"] for row in batched.rows] == [5, 10, 15, 20, 24]
    for name, total in batched.totals().items():
        assert total <= sequential.totals()[name], name
    assert batched.totals()["purge"] < sequential.totals()["purge"]
    assert batched.final_full_retrain == sequential.final_full_retrain  # the same data is left


def test_break_even_where_the_arithmetic_puts_it():
    # N_t = N_s = 4, one slice, one epoch: a request on teacher i retrains that teacher's shard (~180 samples)
    # and student i (~180); one full retrain of the final data is all four of each, less the 8 samples.
    plan = stream_plan(4, 4, teacher_slices=1, student_slices=1, epochs=1)
    where = plan.locations()
    first = [int(np.flatnonzero(where["teacher"] == t)[0]) for t in range(4)]  # one per teacher...
    more = [int(np.flatnonzero(where["teacher"] == t)[1]) for t in range(4)]  # ...twice
    result = simulate_stream(plan, first + more)
    full = result.final_full_retrain
    assert full == plan.all_teacher_samples().size - 8 + plan.all_student_samples().size
    purge = result.bill("purge")  # teacher retraining + PURGE students
    assert purge == [row["cumulative_teacher"] + row["cumulative_purge"] for row in result.rows]
    assert purge[2] <= full < purge[3]  # three requests cost ~3/4 of everything, four cost everything less 4 samples
    assert result.break_even == {"purge": 4, "baseline": 2}  # the baseline retrains all four students every time
    assert simulate_stream(plan, first[:1]).break_even == {"purge": None, "baseline": None}


def test_the_stream_is_deterministic_for_a_seed_and_skew_favours_the_first_teachers():
    plan = stream_plan(n_teachers=16, n_students=4)
    ids = draw_requests(plan, 60, "skewed", 1.0, seed=7)
    assert draw_requests(plan, 60, "skewed", 1.0, seed=7) == ids != draw_requests(plan, 60, "skewed", 1.0, seed=8)
    assert len(set(ids)) == 60
    hits = np.bincount([plan.locate(i)["teacher"] for i in ids], minlength=16)
    assert hits[0] > hits[1] > hits[15]
    assert simulate_stream(plan, ids[:20]).rows == simulate_stream(plan, ids[:20]).rows
    weights = teacher_weights(4, "skewed", 1.0)
    assert weights == pytest.approx(np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (25 / 12))
    assert teacher_weights(4, "uniform", 3.0) == pytest.approx([0.25] * 4)


@pytest.mark.parametrize("call, message", [
    (lambda p: simulate_stream(p, [1], mode="parallel"), "mode: got 'parallel', must be one of sequential, batched"),
    (lambda p: simulate_stream(p, [1, 2], "batched", 3), r"batch_size: got 3, must be an integer in \[1, 2\]"),
    (lambda p: simulate_stream(p, []), "sample_ids: got an empty stream"),
    (lambda p: draw_requests(p, 0), r"n_requests: got 0, must be an integer in \[1, "),
    (lambda p: draw_requests(p, 5, "zipf"), "distribution: got 'zipf'"),
    (lambda p: draw_requests(p, 5, "skewed", -1.0), r"skew: got -1.0, must be a number in \[0, 5.0\]"),
])
def test_bad_stream_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(stream_plan())
