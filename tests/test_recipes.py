"""recipes.py: every job written once. Each announces its total first, a planned request is reused (its
scope computed once), and the recipes' reports are what the CLI prints as JSON."""

import pytest

from purge_engine import advantage, recipes, request_plan
from purge_engine.events import FULL_RETRAIN, PhaseEvent, StepEvent, TotalEvent
from purge_engine.experiment import Experiment
from purge_engine.plan import FULL_RETRAIN_METHODS, METHODS, job_sample_steps
from purge_engine.progress import DONE, KEPT, Progress
from tests.conftest import copy_of


def test_train_announces_the_whole_plan_first_and_the_fold_reaches_it(tiny_config, tmp_path):
    events = []
    report = recipes.train(tmp_path / "run", tiny_config, on_event=events.append)
    plan = Experiment.open(tmp_path / "run").plan
    assert events[0] == TotalEvent("total", job_sample_steps(plan, METHODS), counts_reused=True, what="train")
    progress = Progress()
    for event in events:
        progress.fold(event)
    assert progress.sample_steps == progress.total_sample_steps and progress.fraction == 1.0
    assert sum(c["sample_steps"] for c in report["cost"].values()) == progress.total_sample_steps
    assert set(report["accuracy"]) == {"teacher", *METHODS}
    again = []  # resumed: every step reused, and still the whole plan counted
    recipes.train(tmp_path / "run", tiny_config, on_event=again.append)
    resumed = Progress()
    for event in again:
        resumed.fold(event)
    assert resumed.fraction == 1.0 and resumed.trained_sample_steps == 0


def test_a_request_planned_once_is_served_without_planning_it_again(train_once, tiny_config, tmp_path,
                                                                    monkeypatch):
    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    request = request_plan.plan_request(exp.plan, [int(exp.plan.teacher_shards[1][0][0])])
    calls = []

    def counting(plan, ids):
        calls.append(ids)
        return original(plan, ids)

    original = request_plan.retrain_scope
    for module in (request_plan, advantage):
        monkeypatch.setattr(module, "retrain_scope", counting)
    events = []
    report = recipes.forget(exp.store.root, request, evidence=False, on_event=events.append)
    assert calls == []  # the preview's plan served the work and the job's total
    assert events[0] == TotalEvent("total", request.total, what="forget")
    trained = sum(e.samples * e.epochs for e in events if isinstance(e, StepEvent) and e.kind == "trained")
    assert trained == request.total and report["cost_matches_prediction"] is True
    assert report["scope"] == request.scope.to_dict() and report["advantage"]["why"] == request.why


def test_a_full_retrain_after_a_request_is_folded_apart_with_its_own_total(train_once, tiny_config, tmp_path):
    """The full retrain reports through the same callback, after PhaseEvent FULL_RETRAIN and its own
    TotalEvent: the request's fold keeps what the request kept, and each fold reaches its own total."""
    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    request = request_plan.plan_request(exp.plan, [int(exp.plan.teacher_shards[1][0][0])], full_retrain=True)
    events = []
    report = recipes.forget(exp.store.root, request, evidence=False, on_event=events.append)
    assert events[0] == TotalEvent("total", request.total, what="forget")  # the request's work alone
    split = events.index(next(e for e in events if isinstance(e, PhaseEvent) and e.name == FULL_RETRAIN))
    reduced = Experiment.open(exp.store.root).plan
    assert events[split + 1] == TotalEvent("total", job_sample_steps(reduced, FULL_RETRAIN_METHODS),
                                           counts_reused=True, what=FULL_RETRAIN)
    progress = Progress()
    for event in events:
        progress.fold(event)
    assert progress.events == split and progress.fraction == 1.0  # the request's own bar ends full
    assert KEPT in progress.cells[("teacher", 0)] and progress.cells[("teacher", 1)][-1] == DONE
    assert sum(row.count(KEPT) for row in progress.cells.values()) > 0
    full = progress.full_retrain
    assert progress.active is full and full.fraction == 1.0
    assert full.total_sample_steps == report["full_retrain"]["sample_steps"] == full.trained_sample_steps
    assert {role for role, _ in full.cells} == {"teacher", *FULL_RETRAIN_METHODS}
    assert all(set(row) == {DONE} for row in full.cells.values())  # everything from scratch: its own grid
    copied = progress.copy()
    assert copied.full_retrain is not full and copied.full_retrain.cells == full.cells


def test_a_request_planned_on_an_older_plan_is_planned_again(train_once, tiny_config, tmp_path):
    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    first, second = (int(exp.plan.teacher_shards[i][0][0]) for i in (1, 2))
    stale = request_plan.plan_request(exp.plan, [second])
    recipes.forget(exp.store.root, [first], evidence=False)
    assert not stale.still_holds(Experiment.open(exp.store.root).plan)
    report = recipes.forget(exp.store.root, stale, evidence=False)
    assert report["sample_ids"] == [second] and report["cost_matches_prediction"] is True


def test_recipes_refuse_bad_input_with_the_field_named(train_once, tiny_config, tmp_path):
    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    with pytest.raises(ValueError, match="affected_only: .* needs --verify"):
        recipes.forget(exp.store.root, [0], affected_only=True)
    with pytest.raises(ValueError, match=r"top: got 100001, must be an integer in \[0, 100000\]"):
        recipes.audit(exp.store.root, top=100_001)
    with pytest.raises(ValueError, match="samples: got 'x'"):
        recipes.forget(exp.store.root, "x")
    assert Experiment.open(exp.store.root).latest_request() is None  # nothing was served
