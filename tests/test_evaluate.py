"""The one ensemble prediction: mean and vote, vote ties broken by the mean softmax, an ensemble with
no constituent left, and the same function behind evaluate() and the forget report."""

import pytest
import torch

from purge_engine.evaluate import ABSTAIN, accuracy_of, ensemble_predict, mean_softmax, vote


def probs_of(*rows) -> torch.Tensor:
    """(k, 1, classes) from k per-constituent softmax rows of one sample."""
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(1)


def test_a_two_way_vote_tie_goes_to_the_higher_mean_softmax_not_the_lowest_class():
    probs = probs_of([0.60, 0.00, 0.40], [0.05, 0.00, 0.95])  # votes: class 0 once, class 2 once
    assert ensemble_predict(probs, "vote").tolist() == [2]
    assert ensemble_predict(probs.flip(0), "vote").tolist() == [2]  # constituent order does not matter


def test_the_tie_break_looks_only_at_the_tied_classes():
    # Classes 0 and 1 have two votes each; class 2 has none but the highest mean softmax.
    probs = probs_of([0.50, 0.05, 0.45], [0.50, 0.05, 0.45], [0.05, 0.50, 0.45], [0.00, 0.55, 0.45])
    assert mean_softmax(probs).argmax(1).tolist() == [2]
    assert ensemble_predict(probs, "vote").tolist() == [1]


def test_a_majority_wins_the_vote_even_against_the_mean():
    probs = probs_of([0.51, 0.49, 0.0], [0.51, 0.49, 0.0], [0.0, 1.0, 0.0])
    assert ensemble_predict(probs, "vote").tolist() == [0]
    assert ensemble_predict(probs, "mean").tolist() == [1]


def test_vote_is_deterministic_and_equals_the_plain_majority_without_ties():
    probs = torch.softmax(torch.randn(5, 200, 10, generator=torch.Generator().manual_seed(0)), dim=2)
    votes = vote(probs)
    assert torch.equal(votes, vote(probs.clone()))
    counts = torch.nn.functional.one_hot(probs.argmax(2), 10).sum(0)
    clear = (counts == counts.max(1, keepdim=True).values).sum(1) == 1  # samples with a unique majority
    assert clear.any() and torch.equal(votes[clear], counts.argmax(1)[clear])


def test_an_ensemble_with_no_constituent_abstains_and_its_mean_softmax_is_uniform():
    empty = torch.zeros(0, 4, 3)
    for aggregation in ("mean", "vote"):
        assert ensemble_predict(empty, aggregation).tolist() == [ABSTAIN] * 4
    assert torch.allclose(mean_softmax(empty), torch.full((4, 3), 1 / 3))
    assert accuracy_of(ensemble_predict(empty), torch.tensor([0, 1, 2, 0])) == 0.0  # abstaining is wrong


def test_accuracy_of_an_empty_set_is_none_and_unknown_aggregations_are_refused():
    assert accuracy_of(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)) is None
    with pytest.raises(ValueError, match="aggregation"):
        ensemble_predict(torch.zeros(1, 2, 3), "median")


@pytest.mark.parametrize("aggregation", ["mean", "vote"])
def test_evaluate_and_the_forget_report_use_the_runs_aggregation(aggregation, tiny_config, tmp_path):
    from purge_engine.experiment import Experiment

    exp = Experiment.create(tiny_config.replace(aggregation=aggregation), tmp_path / "run")
    exp.train(methods=("purge",))
    x, y = exp.bundle.test_x, exp.bundle.test_y
    teachers = torch.stack(exp.constituent_probs("teacher", x))
    # On this layout the two rules disagree on the test accuracy, so the checks below tell them apart.
    assert accuracy_of(ensemble_predict(teachers, "mean"), y) != accuracy_of(ensemble_predict(teachers, "vote"), y)
    for role in ("teacher", "purge"):
        expected = accuracy_of(ensemble_predict(torch.stack(exp.constituent_probs(role, x)), aggregation), y)
        assert exp.evaluate()["accuracy"][role] == pytest.approx(expected)
    before = exp.evaluate()["accuracy"]
    report = exp.forget([int(exp.plan.teacher_shards[0][0][0])], methods=("purge",))
    after = exp.evaluate()["accuracy"]
    for role in ("teacher", "purge"):
        assert report.accuracy["before"][role]["test"] == before[role]
        assert report.accuracy["after"][role]["test"] == after[role]
