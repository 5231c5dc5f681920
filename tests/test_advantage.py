"""PURGE's predicted advantage over the baseline student (purge_engine/advantage.py): the one
definition, the side of a request, and the defaults making the paper's point."""

import pytest

from purge_engine.advantage import advantage, request_side, survey, why
from purge_engine.config import PurgeConfig
from purge_engine.datasets.sources import DATASETS
from purge_engine.plan import make_plan, predicted_cost, retrain_scope
from purge_engine.theory import teacher_side_speedup

DIGITS = DATASETS["digits"].n_train


def teacher_only(plan, teacher_id=0):
    return next(int(i) for i in plan.teacher_shard(teacher_id) if plan.locate(int(i))["student"] is None)


def student_only(plan):
    return next(int(i) for i in plan.student_shard(0) if plan.locate(int(i))["teacher"] is None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_layout_shows_the_advantage_on_small_random_requests(seed):
    # A demo giver ticks 1-3 samples: on the defaults the median of baseline/PURGE must be at least 2x.
    config = PurgeConfig(seed=seed)
    result = survey(make_plan(config, DATASETS[config.dataset].n_train), draws=200, seed=seed)
    assert result.median >= 2.0, result.to_dict()
    assert result.share("teacher-side") > 0.4  # most clicked samples sit only in a teacher shard


def test_an_overlap_layout_cannot_show_it():
    # Every sample in a teacher shard and a student chunk: every request is student-side as well.
    config = PurgeConfig(student_data="overlap", student_fraction=1.0, n_students=2)
    result = survey(make_plan(config, DIGITS), draws=100)
    assert result.share("both") == 1.0
    assert result.median < 2.0


def test_a_teacher_side_request_matches_the_closed_form_on_average():
    config = PurgeConfig(teacher_slices=1, student_slices=1)
    plan = make_plan(config, DIGITS)
    ratios = []
    for teacher in range(plan.n_teachers):
        sample = teacher_only(plan, teacher)
        assert request_side(plan, [sample]) == "teacher-side"
        ratios.append(advantage(predicted_cost(plan, retrain_scope(plan, [sample]))))
    # teacher_side_speedup averages over which teacher a deletion hits; chunks differ by one sample at most.
    expected = teacher_side_speedup(config.n_teachers, config.n_students, config.student_slices)
    harmonic = len(ratios) / sum(1 / r for r in ratios)
    assert harmonic == pytest.approx(expected, rel=0.05)


def test_a_student_side_request_is_said_to_be_one():
    plan = make_plan(PurgeConfig(), DIGITS)
    sample = student_only(plan)
    assert request_side(plan, [sample]) == "student-side"
    assert request_side(plan, [sample, teacher_only(plan)]) == "both"
    assert "student-side" in why(plan, [sample]) and "Student 1" in why(plan, [sample])
    value = advantage(predicted_cost(plan, retrain_scope(plan, [sample])))
    steps = plan.student_steps(0)
    assert 1.0 <= value <= 3 * steps / (2 * steps + 1) + 1e-9


def test_no_student_retrained_has_no_advantage():
    empty = {"purge": {"sample_steps": 0}, "baseline": {"sample_steps": 0}}
    assert advantage(empty) is None
    assert advantage({"purge": {"sample_steps": 0}, "baseline": {"sample_steps": 5}}) is None
    assert advantage({"purge": {"sample_steps": 4}, "baseline": {"sample_steps": 10}}) == 2.5


@pytest.mark.parametrize("draws", [0, -1, 10_001, 2.5])
def test_survey_refuses_bad_draws(draws):
    with pytest.raises(ValueError, match="draws"):
        survey(make_plan(PurgeConfig(), DIGITS), draws=draws)
