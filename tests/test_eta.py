"""Predicted seconds from throughput measured on this machine (purge_engine/eta.py), and the live ETA."""

import pytest

from purge_engine.eta import Rates, calibrate, predicted_seconds
from purge_engine.experiment import Experiment
from purge_engine.plan import training_cost


def test_calibration_measures_positive_rates_on_the_runs_own_data(tiny_config, tmp_path):
    run = Experiment.create(tiny_config, tmp_path / "r")
    rates = calibrate(run)
    assert rates.teacher > 0 and rates.student > 0 and rates.label > 0 and rates.seconds > 0
    assert not list((tmp_path / "r").rglob("*.safetensors"))  # measuring stores nothing


def test_predicted_seconds_are_the_job_size_over_the_measured_rates(tiny_config):
    from purge_engine.plan import make_plan

    cost = training_cost(make_plan(tiny_config, 1437))
    rates = Rates(teacher=1000.0, student=500.0, label=10_000.0, step=0.0, seconds=0.1)
    expected = (cost["teacher"]["sample_steps"] / 1000 + cost["purge"]["sample_steps"] / 500
                + cost["purge"]["label_forwards"] / 10_000)
    assert predicted_seconds(cost, rates, ["teacher", "purge"]) == pytest.approx(expected)
    double = Rates(teacher=2000.0, student=1000.0, label=20_000.0, step=0.0, seconds=0.1)
    assert predicted_seconds(cost, double, ["teacher", "purge"]) == pytest.approx(expected / 2)


def test_the_live_estimate_follows_the_jobs_own_rate():
    from purge_engine.events import StepEvent, TotalEvent
    from purge_engine.progress import Progress

    progress = Progress()
    progress.fold(TotalEvent("total", 1000))
    assert progress.seconds_left(2.0) is None  # nothing trained yet: no rate to go by
    progress.fold(StepEvent("trained", "teacher", 0, 0, 2, samples=250, epochs=1))
    assert progress.seconds_left(2.0) == pytest.approx(6.0)  # 750 left at 125 per second
    progress.fold(StepEvent("trained", "teacher", 0, 1, 2, samples=750, epochs=1))
    assert progress.seconds_left(4.0) == 0.0


def test_job_steps_count_the_slice_steps_a_job_trains(tiny_config):
    from purge_engine.eta import job_steps
    from purge_engine.plan import make_plan, retrain_scope

    plan = make_plan(tiny_config, 1437)
    whole = job_steps(plan)
    assert whole["teacher"] == tiny_config.n_teachers * tiny_config.teacher_slices
    assert whole["purge"] == sum(plan.student_steps(k) for k in range(plan.n_students)) == whole["baseline"]
    sample = int(plan.teacher_shards[0][1][0])  # Teacher 1, slice 2: one teacher step retrains
    assert job_steps(plan, retrain_scope(plan, [sample]))["teacher"] == 1
