"""The advantage headline and the with/without view of a forget request (dashboard/forget/views.py; the
cumulative advantage in compare/views.py), built from a real request's ledger record."""

import pytest

from dashboard.forget import views as forget_views
from dashboard.shared import cost
from purge_engine.plan import training_cost
from tests.conftest import copy_of


@pytest.fixture(scope="module")
def served(disjoint_run, tmp_path_factory):
    exp = copy_of(disjoint_run, tmp_path_factory.mktemp("served") / "run")
    sample = next(int(i) for i in exp.plan.teacher_shard(1) if exp.plan.locate(int(i))["student"] is None)
    training = training_cost(exp.plan)
    report = exp.forget([sample])
    exp.verify(affected_only=True)
    return exp, report, training, exp.ledger.record(report.request_id)


def test_the_headline_shows_each_methods_share_and_the_advantage(served):
    _, report, training, _ = served
    metrics = {m["label"]: m["value"] for m in forget_views.advantage_headline(report.predicted, training)}
    assert metrics["Full retrain"] == "100%"
    assert metrics["Baseline (SISA) retrains"] == "100%"  # a teacher-side deletion: every baseline student
    assert metrics[cost.ADVANTAGE] == f"{report.advantage['predicted']:.2f}×"
    assert report.advantage["predicted"] > 1 and report.advantage["side"] == "teacher-side"


def test_the_with_without_view_tells_changed_from_bit_identical(served):
    exp, report, _, record = served
    frame = forget_views.before_after_frame(record)
    assert len(frame) == len(record["hashes_before"])
    retrained = {f"{role}-{c}" for role, steps in report.retrained.items() for c in steps}
    for key, (_, row) in zip(record["hashes_before"], frame.iterrows(), strict=True):
        assert (row["Parameters"] == forget_views.RETRAINED) == (key in retrained)
        assert bool(row["Equals from-scratch reference"])  # verified: every constituent equals the reference
        assert 0 <= row["Test accuracy after"] <= 100
    identical = frame[frame["Parameters"] == forget_views.BIT_IDENTICAL]
    assert (identical["Test accuracy before"] == identical["Test accuracy after"]).all()  # same bits, same outputs
    assert (identical["P(true label) of forgotten, before"] == identical["P(true label) of forgotten, after"]).all()
    assert forget_views.change_summary(frame).startswith(f"{len(retrained)} of {len(frame)} constituents retrained")
