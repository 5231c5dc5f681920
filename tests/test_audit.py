"""Evidence of forgetting (audit.py, canaries.py, contrast.py): measured, seeded, on real digits runs."""

import json
import math

import numpy as np
import pytest
import torch

from purge_engine import audit
from purge_engine.canaries import canary_ids, eligible_ids, planted_labels
from purge_engine.cli import main
from purge_engine.config import PurgeConfig
from purge_engine.datasets.readers import load_dataset
from purge_engine.experiment import Experiment
from purge_engine.plan import make_plan

# Canaries need the students queried at them: student data overlaps the teachers'.
CANARY_CONFIG = PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, student_data="overlap",
                            student_fraction=0.5, canaries=8, epochs=10, threads=1)
METHODS = ("purge", "baseline")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The canary run trained, then its canaries forgotten and the request verified: (run, before, audit)."""
    exp = Experiment.create(CANARY_CONFIG, tmp_path_factory.mktemp("canary") / "run")
    exp.train(methods=METHODS)
    before = {role: exp.parameters(role, 0) for role in ("teacher", "purge")}
    ids = canary_ids(CANARY_CONFIG, exp.bundle.id_space or exp.bundle.n_train)
    exp.forget(ids.tolist(), methods=METHODS)
    verdict = exp.verify()
    assert verdict["exact"], verdict["reason"]
    return exp, before, exp.audit()


# -- the statistic -----------------------------------------------------------------------------------------
def test_scaled_logit_is_log_odds_of_the_label():
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3]])
    phi = audit.scaled_logit(probs, torch.tensor([0, 2]))
    assert phi == pytest.approx([math.log(0.9 / 0.1), math.log(0.3 / 0.7)], rel=1e-6)


def test_a_target_far_above_its_references_gets_a_small_p_and_a_typical_one_does_not():
    refs = np.array([-3.0, -2.0, -2.5])
    z_high, p_high = audit.member_test(5.0, refs, sigma=1.0)
    z_mid, p_mid = audit.member_test(-2.5, refs, sigma=1.0)
    assert p_high < 1e-6 < 0.4 < p_mid
    assert z_high == pytest.approx(7.5 / math.sqrt(1 + 1 / 3))
    assert audit.member_test(5.0, np.zeros(0), sigma=1.0) == (None, None)


def test_sigma_is_pooled_over_test_samples_and_needs_two_constituents():
    phi = np.array([[0.0, 1.0], [2.0, 3.0]])  # variance across the 2 constituents: 2 for each sample
    assert audit.pooled_sigma(phi) == pytest.approx(math.sqrt(2.0))
    assert audit.pooled_sigma(phi[:1]) is None


# -- who is tested against whom ------------------------------------------------------------------------------
def test_purge_has_unexposed_students_for_a_teacher_side_sample_and_the_baseline_none():
    config = PurgeConfig(n_teachers=8, n_students=4, student_data="disjoint", student_fraction=0.3)
    plan = make_plan(config, 1000)
    sample = int(plan.teacher_shard(5)[0])  # Teacher 6 feeds Student 3 (teachers 5, 6)
    found = audit.targets(plan, [sample], ["teacher", "purge", "baseline"])
    teacher = [t for t in found if t.role == "teacher"]
    purge = [t for t in found if t.role == "purge"]
    baseline = [t for t in found if t.role == "baseline"]
    assert [(t.constituent, t.references) for t in teacher] == [(5, (0, 1, 2, 3, 4, 6, 7))]
    assert [(t.constituent, t.via, t.references) for t in purge] == [(2, "teacher", (0, 1, 3))]
    assert len(baseline) == 4 and all(t.references == () for t in baseline)


# -- canaries ------------------------------------------------------------------------------------------------
def test_canaries_are_a_function_of_the_config_and_each_id():
    bundle = load_dataset("digits")
    n = bundle.id_space or bundle.n_train
    ids = canary_ids(CANARY_CONFIG, n)
    assert ids.size == 8 and np.isin(ids, eligible_ids(CANARY_CONFIG, n)).all()
    plan = make_plan(CANARY_CONFIG, n)
    assert np.isin(ids, plan.teacher_shard(0)).all()
    assert np.isin(ids, np.concatenate(plan.student_shards[0][0])).all()
    # a reference built without some canaries plants exactly the others, with the same labels
    excluded = load_dataset("digits", exclude=ids[:3].tolist())
    kept = make_plan(CANARY_CONFIG, excluded)
    assert np.isin(ids[3:], kept.teacher_shard(0)).all() and not np.isin(ids[:3], kept.teacher_shard(0)).any()
    labels = bundle.train_y[bundle.rows(ids)].numpy()
    flipped = planted_labels(0, ids, labels, 10)
    assert (flipped != labels).all() and ((flipped >= 0) & (flipped < 10)).all()


def test_canaries_need_overlapping_student_data_and_a_layout_that_holds_them():
    with pytest.raises(ValueError, match="canaries: got 3, must be 0 when student_data is 'disjoint'"):
        PurgeConfig(canaries=3, student_data="disjoint").validate()
    with pytest.raises(ValueError, match=r"canaries: got 5000, must be in \[0, \d+\] for this layout"):
        canary_ids(CANARY_CONFIG.replace(canaries=5000), 1437)


def test_a_config_without_canaries_keeps_its_fingerprint_and_loads_without_the_field():
    config = PurgeConfig()
    stored = {k: v for k, v in config.to_dict().items() if k != "canaries"}
    assert PurgeConfig.from_dict(stored, complete=True) == config
    assert PurgeConfig(canaries=2, student_data="overlap").fingerprint() != \
        PurgeConfig(student_data="overlap").fingerprint()


def test_the_exposed_student_carries_the_canaries_until_purge_retrains_it(served):
    exp, _, report = served
    canary = report["canary"]
    exposed, unexposed = canary["purge"]["0"], canary["purge"]["1"]
    assert canary["teacher"]["0"]["before"] >= 0.5  # the teacher that held them learned the flipped labels
    assert exposed["before"] >= unexposed["before"] + 0.25  # the leak through distillation
    assert exposed["teacher_only"] == exposed["before"]  # retraining the teacher alone leaves the student as it was
    assert exposed["after"] == exposed["reference"] <= unexposed["before"] + 0.125
    assert canary["teacher"]["0"]["after"] == canary["teacher"]["0"]["reference"]


def test_forgotten_samples_score_as_members_before_and_as_the_reference_does_after(served):
    _, _, report = served
    teacher = [r for r in report["membership"] if r["role"] == "teacher"]
    assert len(teacher) == 8
    # a flipped-label sample on the teacher that held it: far more confident than teachers that never saw it
    assert np.median([r["p_before"] for r in teacher]) < 1e-3
    assert np.median([r["p_after"] for r in teacher]) > 0.1
    for row in report["membership"]:
        assert row["p_after"] == row["p_reference"]  # exact: the same bits, the same statistic
    baseline = [r for r in report["membership"] if r["role"] == "baseline"]
    assert baseline and all(r["references"] == 0 for r in baseline)  # every baseline student learned from it
    # too few siblings: extra reference models, trained on seeded data without the samples, fill in
    assert all(r["extra_references"] == 3 and r["p_before"] is not None for r in baseline)
    assert all(r["extra_references"] == 0 for r in teacher)  # three sibling teachers are enough


def test_the_exposed_student_is_bitwise_the_reference_after_the_request(served):
    exp, before, report = served
    assert report["exact"] is True
    after = exp.parameters("purge", 0)
    assert any(not torch.equal(after[k], before["purge"][k]) for k in after)  # retrained


def test_purge_curves_coincide_with_the_reference_and_the_approximate_ones_do_not(served):
    _, _, report = served
    contrast = report["contrast"]
    assert contrast["relearning"]["purge"] == contrast["relearning"]["reference"]
    assert contrast["quantisation"]["purge"] == contrast["quantisation"]["reference"]
    assert contrast["relearning"]["approximate"] != contrast["relearning"]["purge"]
    for key, budget in contrast["budget_sample_steps"].items():  # at equal compute, within one epoch's rounding
        assert abs(contrast["spent_sample_steps"][key] - budget) <= budget / 2
    purge_p = np.median(contrast["relearning"]["purge"][0]["p"])
    approx_p = np.median(contrast["relearning"]["approximate"][0]["p"])
    assert approx_p < purge_p  # fine-tuning on retained data leaves the samples more member-like


def test_the_most_memorised_samples_are_the_canaries(served):
    exp, _, _ = served
    fresh = Experiment.create(CANARY_CONFIG.replace(seed=1), exp.store.root.parent / "fresh")
    fresh.train(methods=())
    ranking = audit.memorisation(fresh)
    ids = canary_ids(fresh.config, fresh.bundle.id_space or fresh.bundle.n_train)
    assert np.isin(ids, ranking["sample_id"][:20]).sum() >= 6


def test_audit_command_reports_the_documented_keys(served, capsys):
    exp, _, _ = served
    assert main(["audit", "--run", str(exp.store.root), "--json", "--top", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"request_id", "samples", "membership", "canary", "canary_ids", "contrast", "most_memorised"} <= set(report)
    row = report["membership"][0]
    assert {"sample_id", "role", "constituent", "references", "p_before", "p_after", "p_reference"} <= set(row)
    assert set(report["canary"]["purge"]["0"]) == {"before", "after", "teacher_only", "reference"}
    assert {"method", "budget_sample_steps", "relearning", "quantisation"} <= set(report["contrast"])
    assert len(report["most_memorised"]) == 3
    assert main(["audit", "--run", str(exp.store.root), "--top", "-1"]) == 2
    assert "top: got -1, must be an integer in [0, 100000]" in capsys.readouterr().err


def test_forget_without_evidence_records_none_and_audit_says_so(served, tmp_path, capsys):
    from tests.conftest import copy_of

    exp = copy_of(served[0], tmp_path / "run")
    sample = int(exp.plan.teacher_shard(2)[0])
    assert main(["forget", "--run", str(exp.store.root), "--samples", str(sample), "--methods", "purge,baseline",
                 "--no-evidence", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["evidence"]["after"] == {} and report["contrast"] is None
    assert report["accuracy"]["after"]  # the scoring stays
    audited = Experiment.open(exp.store.root).audit(top=0)
    assert audited["membership"] == [] and "without evidence" in audited["note"]
