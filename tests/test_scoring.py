"""The membership check: exact ROC AUC against scikit-learn, the bootstrap interval, members taken
from each role's own training samples, and a trained run where overfit teachers are detectable."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from purge_engine.config import PurgeConfig
from purge_engine.scoring import (
    MEMBER_SAMPLE,
    below_fraction,
    bootstrap_auc,
    member_ids,
    membership_check,
    roc_auc,
    sample_sets,
)

MEMBERSHIP_KEYS = {"auc", "auc_low", "auc_high", "forgotten_percentile", "forgotten_percentiles", "forgotten_losses",
                   "member_rate", "test_member_rate", "forgotten_member_rate", "threshold", "member_mean_loss",
                   "test_mean_loss", "forgotten_mean_loss", "member_count", "test_count", "bootstrap_resamples",
                   "test_loss_quantiles"}


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    members = np.round(rng.exponential(0.8, rng.integers(5, 300)), 1)  # rounded: many ties
    non_members = np.round(rng.exponential(1.0, rng.integers(5, 300)), 1)
    labels = np.r_[np.ones(members.size), np.zeros(non_members.size)]
    reference = roc_auc_score(labels, -np.r_[members, non_members])  # lower loss => member
    assert roc_auc(members, non_members) == pytest.approx(reference, abs=1e-12)


def test_below_fraction_counts_ties_half_and_auc_extremes():
    assert below_fraction(np.array([0.0, 2.0, 5.0]), np.array([1.0, 2.0, 3.0, 4.0])).tolist() == [0.0, 0.375, 1.0]
    assert roc_auc(np.array([0.1, 0.2]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert roc_auc(np.array([]), np.array([1.0])) is None


def test_the_bootstrap_interval_is_seeded_and_holds_the_point_estimate():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(0.9, 1, 400), rng.normal(1.0, 1, 500)
    low, high = bootstrap_auc(members, non_members, seed=7)
    assert low < roc_auc(members, non_members) < high and high - low < 0.15
    assert (low, high) == bootstrap_auc(members, non_members, seed=7)
    assert bootstrap_auc(members, np.array([]), seed=7) == (None, None)


def test_membership_check_reports_percentiles_of_forgotten_losses_among_test_losses():
    check = membership_check(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([1.0, 2.0, 3.0, 4.0]),
                             torch.tensor([0.0, 2.0, 5.0]), seed=0)
    assert MEMBERSHIP_KEYS <= set(check)
    assert check["auc"] == 1.0 and check["forgotten_percentiles"] == [0.0, 37.5, 100.0]
    assert check["forgotten_percentile"] == pytest.approx(137.5 / 3)
    assert check["threshold"] == pytest.approx(0.2) and check["test_member_rate"] == 0.0
    assert check["forgotten_losses"] == [0.0, 2.0, 5.0] and len(check["test_loss_quantiles"]) == 101
    nothing = membership_check(torch.tensor([0.1]), torch.tensor([1.0]), torch.zeros(0), seed=0)
    assert nothing["forgotten_percentile"] is None and nothing["forgotten_percentiles"] == []


# -- on a trained run ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """One teacher and one student on 15 % of digits each, 30 epochs: the teacher overfits its shard.
    Returns the run and a forget report on three of the teacher's samples."""
    from purge_engine.experiment import Experiment

    config = PurgeConfig(n_teachers=1, n_students=1, teacher_slices=1, student_slices=1, epochs=30, batch_size=32,
                         teacher_fraction=0.15, student_fraction=0.15, student_data="disjoint", threads=1)
    exp = Experiment.create(config, tmp_path_factory.mktemp("runs") / "overfit")
    exp.train(methods=("purge",))
    report = exp.forget(exp.plan.teacher_shards[0][0][:3].tolist(), methods=("purge",))
    return exp, report


def test_members_are_the_roles_own_training_samples_without_the_forgotten(overfit):
    exp, report = overfit
    plan = exp.plan
    forgotten = report.sample_ids
    teacher = member_ids(plan, "teacher", [], exp.config.seed)
    student = member_ids(plan, "purge", [], exp.config.seed)
    assert set(teacher) <= set(plan.all_teacher_samples()) and set(student) <= set(plan.all_student_samples())
    assert not set(teacher) & set(student)  # disjoint student data: two different member sets
    assert not set(teacher) & set(forgotten) and len(teacher) <= MEMBER_SAMPLE
    assert set(member_ids(plan, "baseline", [], 0)) <= set(plan.all_student_samples())
    inputs, labels = sample_sets(exp.bundle, plan, [], exp.config.seed, "teacher").sets["members"]
    assert torch.equal(labels, exp.bundle.train_y[torch.as_tensor(teacher)])


def test_an_overfit_teacher_is_told_apart_from_the_test_split(overfit):
    _, report = overfit
    for when in ("before", "after"):
        for role in ("teacher", "purge"):
            check = report.membership[when][role]
            assert MEMBERSHIP_KEYS <= set(check)
            assert check["auc_low"] <= check["auc"] <= check["auc_high"]
            assert 0.0 <= check["forgotten_percentile"] <= 100.0 and len(check["forgotten_percentiles"]) == 3
            assert check["member_count"] == min(MEMBER_SAMPLE, check["member_count"]) > 0
        teacher = report.membership[when]["teacher"]
        assert teacher["auc"] > 0.55 and teacher["auc_low"] > 0.5
        assert teacher["member_mean_loss"] < teacher["test_mean_loss"]
