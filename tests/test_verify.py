"""Verification against an independent reference: data rebuilt without the samples, its own plan,
every constituent compared; and the checks that catch a live run whose bookkeeping lies."""

import json

import numpy as np
import pytest
import torch

from purge_engine import plan as plan_module
from purge_engine.config import PurgeConfig
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS, Plan
from tests.conftest import copy_of

CONFIG = PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, student_data="disjoint",
                     student_fraction=0.3, teacher_fraction=0.5, epochs=2, batch_size=64, threads=1)


@pytest.fixture(scope="module")
def trained(train_once):
    return train_once(CONFIG)


def all_parameters(exp: Experiment) -> dict:
    return {(role, c): exp.parameters(role, c) for role, c in exp.constituents(["teacher", *METHODS])}


def test_every_constituent_equals_a_run_on_data_built_without_the_sample(trained, tmp_path):
    """The whole pipeline, from a dataset that never held the sample: every constituent, affected or
    not, bit for bit. Pool-statistics normalisation (any sample depending on another) fails this."""
    exp = copy_of(trained, tmp_path / "run")
    sample = int(exp.plan.teacher_shards[1][0][2])
    exp.forget([sample])
    reference = Experiment.create(CONFIG, tmp_path / "reference", exclude=[sample])
    assert sample not in set(reference.bundle.sample_ids.tolist())
    assert reference.plan.same_layout(exp.plan)
    reference.train()
    live, ref = all_parameters(exp), all_parameters(reference)
    assert live.keys() == ref.keys() and len(live) == 4 + 3 * 2
    for position, tensors in live.items():
        assert all(torch.equal(tensors[name], ref[position][name]) for name in tensors), position


def test_a_plan_that_keeps_a_forgotten_sample_fails_verification(trained, tmp_path, monkeypatch):
    """If the bookkeeping marks a sample forgotten but leaves it in its slice, verify says so."""
    exp = copy_of(trained, tmp_path / "run")
    sample = int(exp.plan.teacher_shards[2][1][0])

    def lying_without(self, sample_ids):
        ids = self.check_request(sample_ids)
        return Plan(self.n_pool, self.teacher_shards, self.mapping, self.student_shards, self.teacher_epochs,
                    self.student_epochs, self.forgotten | frozenset(ids))

    monkeypatch.setattr(Plan, "without", lying_without)
    exp.forget([sample])
    monkeypatch.undo()
    verdict = exp.verify()
    assert verdict["exact"] is False and verdict["forgotten_absent"] is False
    assert "Teacher 3 slice 2" in verdict["reason"]


def test_work_that_differs_from_the_prediction_fails_verification(trained, tmp_path, monkeypatch):
    exp = copy_of(trained, tmp_path / "run")
    real = plan_module.predicted_cost

    def off_by_one(plan, scope):
        cost = real(plan, scope)
        cost["purge"]["sample_steps"] += 1
        return cost

    monkeypatch.setattr("purge_engine.request_plan.predicted_cost", off_by_one)  # where a request is planned
    report = exp.forget([int(exp.plan.student_shards[0][0][0][0])])
    assert report.cost_matches_prediction is False
    done = [e for e in exp.ledger.entries() if e["kind"] == "done"][-1]["body"]
    assert done["cost_matches_prediction"] is False and "purge sample_steps" in done["cost_mismatches"][0]
    verdict = exp.verify()
    assert verdict["equal"] is True  # the parameters are right...
    assert verdict["exact"] is False and verdict["cost_matches_prediction"] is False  # ...the accounting is not


def test_a_teacher_side_request_relabels_with_one_teacher_for_every_method(trained, tmp_path):
    """Per-teacher output caches: the baseline pays one teacher's passes over the student data, not N_t."""
    exp = copy_of(trained, tmp_path / "run")
    report = exp.forget([int(exp.plan.teacher_shards[3][0][0])])  # Teacher 4: second of Student 2's group
    student_samples = exp.plan.all_student_samples().size
    assert report.cost["baseline"]["label_forwards"] == student_samples
    chunk_2 = sum(s.size for s in exp.plan.student_shards[1][1])
    assert report.cost["purge"]["label_forwards"] == chunk_2 == report.cost["single_teacher"]["label_forwards"]
    assert report.cost_matches_prediction is True


def test_verify_reports_how_the_reference_was_built(trained, tmp_path, capsys):
    from purge_engine.cli import main

    exp = copy_of(trained, tmp_path / "run")
    exp.forget([int(exp.plan.student_shards[1][0][1][0]), int(exp.plan.teacher_shards[0][0][0])])
    assert main(["verify", "--run", str(exp.store.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["verification"]
    assert report["exact"] is True and report["forgotten_absent"] is True
    assert report["cost_matches_prediction"] is True
    assert "rebuilt from its source without the 2 sample(s)" in report["reference"]
    assert report["constituents_compared"] == 10 and report["max_abs_diff"] == 0.0


def test_affected_only_verification_still_compares_everything(trained, tmp_path):
    exp = copy_of(trained, tmp_path / "run")
    exp.forget([int(exp.plan.teacher_shards[0][1][0])])
    verdict = exp.verify(affected_only=True)
    assert verdict["exact"] is True and verdict["constituents_compared"] == 10
    assert "reused only where the reference's own content keys matched" in verdict["reference"]


def test_the_reference_plan_is_the_live_plan_less_the_samples():
    """Placement is a function of the config and each sample's id: planning the reduced dataset puts
    every remaining sample where the live plan keeps it."""
    from purge_engine.datasets.readers import load_dataset
    from purge_engine.plan import make_plan

    config = PurgeConfig(n_teachers=6, n_students=3)
    full = make_plan(config, load_dataset("digits"))
    drop = [int(full.teacher_shards[2][1][0]), int(full.student_shards[1][0][1][3]), 7]
    reduced = make_plan(config, load_dataset("digits", exclude=drop))
    assert reduced.same_layout(full.without(drop))
    assert reduced.forgotten == frozenset(drop) & frozenset(np.union1d(full.all_teacher_samples(),
                                                                       full.all_student_samples()).tolist())
