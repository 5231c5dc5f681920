"""Forget requests: exact against from-scratch retraining, costs as predicted, isolation, safety."""

import json
import random
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from purge_engine.config import PurgeConfig
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS
from purge_engine.rundir.ledger import Ledger
from tests.conftest import copy_of, snapshot


def params_of(exp: Experiment) -> dict:
    roles = {"teacher": exp.config.n_teachers, **{m: exp.config.n_students for m in METHODS}}
    return {(r, c): exp.parameters(r, c) for r, n in roles.items() for c in range(n)}


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for position, tensors in a.items():
        for name, tensor in tensors.items():
            assert torch.equal(tensor, b[position][name]), f"{position} {name} differs from the from-scratch run"


def from_scratch(exp: Experiment, path) -> Experiment:
    """The whole pipeline from nothing on the dataset built without every forgotten sample: its own
    preprocessing and its own plan, nothing borrowed from the live run's bookkeeping. Same seed."""
    reference = Experiment.create(exp.config, path, exclude=sorted(exp.plan.forgotten))
    assert reference.plan.same_layout(exp.plan)  # placement depends only on the config and each sample's id
    reference.train()
    return reference


# -- the property test: random layouts, random requests -----------------------------------------
KINDS = ["teacher-side", "student-side", "both", "several", "sequential", "empty-slice"]


N_CASES = 24  # each of the 6 kinds under both aggregations and both memory layouts, once


def random_case(seed: int):
    rng = random.Random(seed)
    n_teachers = rng.randint(2, 5)
    config = PurgeConfig(
        n_teachers=n_teachers, n_students=rng.randint(1, n_teachers), teacher_slices=rng.randint(1, 3),
        student_slices=rng.randint(1, 3), student_data=rng.choice(["overlap", "disjoint"]),
        teacher_fraction=rng.choice([0.1, 0.15]), student_fraction=rng.choice([0.1, 0.15]),
        epochs=rng.randint(1, 2), batch_size=rng.choice([16, 64]), seed=rng.randint(0, 10**6), threads=1,
        aggregation=("mean", "vote")[(seed // len(KINDS)) % 2],
        memory_format=("channels_last", "contiguous")[(seed // (2 * len(KINDS))) % 2])
    return rng, config, KINDS[seed % len(KINDS)]


def pick_request(rng: random.Random, plan, kind: str) -> list[list[int]]:
    teacher = set(plan.all_teacher_samples().tolist())
    student = set(plan.all_student_samples().tolist())
    only_teacher, only_student, both = sorted(teacher - student), sorted(student - teacher), sorted(teacher & student)
    anywhere = sorted(teacher | student)
    if kind == "teacher-side":
        return [[rng.choice(only_teacher or anywhere)]]
    if kind == "student-side":
        return [[rng.choice(only_student or anywhere)]]
    if kind == "both":
        return [[rng.choice(both)]] if both else [[rng.choice(only_teacher), rng.choice(only_student)]]
    if kind == "several":
        return [rng.sample(anywhere, 4)]
    if kind == "sequential":
        first = rng.sample(anywhere, 2)
        return [first, rng.sample(sorted(set(anywhere) - set(first)), 2)]
    # empty-slice: every sample of one student slice (and whatever teacher slices they sit in)
    k = rng.randrange(plan.n_students)
    chunk = rng.randrange(plan.n_chunks(k))
    return [plan.student_shards[k][chunk][rng.randrange(plan.student_slices)].tolist()]


@pytest.mark.parametrize("case", range(N_CASES))
def test_after_every_request_each_constituent_equals_a_from_scratch_run(case, tmp_path):
    rng, config, kind = random_case(case)
    exp = Experiment.create(config, tmp_path / "run")
    exp.train()
    requests = pick_request(rng, exp.plan, kind)
    for n, ids in enumerate(requests):
        report = exp.forget(ids, score=False)  # scoring is covered below; this test is about the parameters
        assert report.cost_matches_prediction is True
        for role in ("teacher", *METHODS):  # measured work is exactly the predicted work
            assert report.cost[role]["sample_steps"] == report.predicted[role]["sample_steps"], role
            assert report.cost[role]["label_forwards"] == report.predicted[role]["label_forwards"], role
            assert {int(c): s for c, s in report.retrained.get(role, {}).items()} == (
                {int(c): s for c, s in report.scope["teachers" if role == "teacher" else "students"].items()}
                if role == "teacher" else {int(c): s for c, s in report.scope["students"][role].items()})
        if n < len(requests) - 1:  # the last request is judged by verify's own from-scratch reference
            assert_bitwise_equal(params_of(exp), params_of(from_scratch(exp, tmp_path / f"reference-{n}")))
    verdict = exp.verify()
    assert verdict["exact"] is True, verdict["reason"]
    assert verdict["forgotten_absent"] and verdict["cost_matches_prediction"] and verdict["plan_matches_reference"]
    assert verdict["constituents_compared"] == config.n_teachers + len(METHODS) * config.n_students


# -- isolation ------------------------------------------------------------------------------------
# disjoint_run (tests/conftest.py): 8 teachers, 4 students, student data held out from the teachers.
def test_a_teacher_side_request_retrains_only_the_student_it_feeds_but_every_baseline(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    sample = int(exp.plan.teacher_shards[5][0][3])  # Teacher 6: second in Student 3's group
    before = params_of(exp)
    report = exp.forget([sample])
    assert report.retrained["teacher"] == {"5": 0}
    assert report.retrained["purge"] == {"2": 1 * exp.config.student_slices}  # from chunk 2
    assert set(report.retrained["baseline"]) == {"0", "1", "2", "3"}
    assert all(report.retrained["baseline"][k] == 0 for k in report.retrained["baseline"])
    after = params_of(exp)
    for k in (0, 1, 3):  # students Teacher 6 does not feed: untouched, bit for bit
        assert all(torch.equal(after[("purge", k)][n], before[("purge", k)][n]) for n in before[("purge", k)])
    assert report.reused["purge"] == [0, 1, 3]
    assert report.cost["baseline"]["sample_steps"] > 4 * report.cost["purge"]["sample_steps"]


def test_forgetting_a_whole_teacher_shard_leaves_an_empty_teacher_at_its_init(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    report = exp.forget(exp.plan.teacher_shard(0).tolist())
    assert exp.plan.is_empty("teacher", 0)
    init = exp.new_model("teacher", 0).state_dict()
    assert all(torch.equal(exp.parameters("teacher", 0)[k], init[k]) for k in init)
    assert report.cost["teacher"]["sample_steps"] == 0
    # Student 1's chunk 1 was labelled by Teacher 1 alone: the single-teacher ablation now has no
    # teacher for it and labels it uniformly; PURGE chunk 2 is labelled by Teacher 2 alone.
    assert exp.plan.labelling_teachers("single_teacher", 0, 0) == ()
    assert exp.plan.labelling_teachers("purge", 0, 1) == (1,)
    accuracy = exp.evaluate()["accuracy"]
    assert accuracy["teacher"] > 0.5  # the other seven teachers still predict; the empty one is left out
    assert exp.verify()["exact"] is True


def test_forgetting_a_whole_student_shard_leaves_an_empty_student(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    exp.forget(exp.plan.student_shard(3).tolist())
    assert exp.plan.is_empty("student", 3)
    init = exp.new_model("purge", 3).state_dict()
    assert all(torch.equal(exp.parameters("purge", 3)[k], init[k]) for k in init)
    x, y = exp.bundle.test_x, exp.bundle.test_y
    others = torch.stack([exp.constituent_probs("purge", x)[k] for k in (0, 1, 2)]).mean(0)
    assert exp.evaluate()["accuracy"]["purge"] == pytest.approx(float((others.argmax(1) == y).float().mean()))
    assert_bitwise_equal(params_of(exp), params_of(from_scratch(exp, tmp_path / "reference")))


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids,match", [
    ([], "empty request"),
    ([-4], r"must be in \[0, 1403\]"),
    ([99999], r"must be in \[0, 1403\]"),
    ([1.5], "whole numbers"),
    (["abc"], "whole numbers"),
])
def test_bad_requests_are_refused_and_leave_the_run_unchanged(disjoint_run, ids, match):
    before = snapshot(disjoint_run.store.root)
    with pytest.raises(ValueError, match=match):
        disjoint_run.forget(ids)
    assert snapshot(disjoint_run.store.root) == before


def test_ids_already_forgotten_or_unused_are_refused(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    sample = int(exp.plan.student_shards[0][0][0][0])
    exp.forget([sample])
    before = snapshot(exp.store.root)
    with pytest.raises(ValueError, match="already forgotten"):
        exp.forget([sample])
    used = set(exp.plan.all_teacher_samples().tolist()) | set(exp.plan.all_student_samples().tolist())
    unused = next(i for i in range(exp.plan.n_pool) if i not in used and i not in exp.plan.forgotten)
    with pytest.raises(ValueError, match="not used by any constituent"):
        exp.forget([unused])
    assert snapshot(exp.store.root) == before


def test_a_missing_or_foreign_run_directory_is_a_clear_error(tmp_path):
    from purge_engine.cli import main

    assert main(["forget", "--run", str(tmp_path / "absent"), "--samples", "1"]) == 2
    assert main(["forget", "--run", str(tmp_path), "--samples", "1"]) == 2


# -- a crash mid-request ---------------------------------------------------------------------------
KILLER = """
import os, signal, sys
from purge_engine.experiment import Experiment
exp = Experiment.open(sys.argv[1])
trained = []
def on_event(event):
    if getattr(event, "kind", "") == "trained":
        trained.append(event)
        if len(trained) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
exp.forget([int(i) for i in sys.argv[2].split(",")], on_event=on_event)
"""


@pytest.mark.parametrize("kill_after", [1, 6])
def test_a_request_killed_midway_is_finished_on_reopening(disjoint_run, tmp_path, kill_after):
    ids = [int(disjoint_run.plan.teacher_shards[1][1][0]), int(disjoint_run.plan.student_shards[2][1][0][0])]
    uninterrupted = copy_of(disjoint_run, tmp_path / "uninterrupted")
    uninterrupted.forget(ids)
    shutil.copytree(disjoint_run.store.root, tmp_path / "killed")
    result = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "killed"), ",".join(map(str, ids)),
                             str(kill_after)], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr
    ledger = Ledger(tmp_path / "killed" / "ledger.sqlite")
    assert ledger.pending() == [1]  # journaled before the work, never marked done
    reopened = Experiment.open(tmp_path / "killed")  # finishes the request
    assert ledger.pending() == []
    record = ledger.record(1)
    assert record["status"] == "done" and record["resumed"] is True
    assert ledger.verify_chain()[0]
    assert_bitwise_equal(params_of(reopened), params_of(uninterrupted))


def test_membership_and_accuracy_are_reported_before_and_after(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    ids = exp.plan.student_shards[1][0][0][:5].tolist()
    report = exp.forget(ids, full_retrain=True)
    for when in ("before", "after"):
        for role in ("teacher", *METHODS):
            assert set(report.accuracy[when][role]) == {"test", "retained", "forgotten"}
            check = report.membership[when][role]
            assert 0.0 <= check["forgotten_member_rate"] <= 1.0 and 0.0 <= check["test_member_rate"] <= 1.0
            assert 0.0 <= check["auc_low"] <= check["auc"] <= check["auc_high"] <= 1.0
            assert 0.0 <= check["forgotten_percentile"] <= 100.0 and len(check["forgotten_percentiles"]) == 5
    full = report.full_retrain
    assert full["identical_to_unlearned"] is True
    assert full["sample_steps"] == report.predicted["full_retrain"]["sample_steps"]
    assert set(full["accuracy"]) == {"teacher", "purge"}


def test_forget_cli_json_has_the_documented_keys(disjoint_run, tmp_path, capsys):
    from purge_engine.cli import main

    exp = copy_of(disjoint_run, tmp_path / "run")
    sample = int(exp.plan.teacher_shards[2][0][0])
    assert main(["forget", "--run", str(exp.store.root), "--samples", str(sample), "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["request_id"] == 1 and report["scope"]["teachers"] == {"2": 0}
    for method in METHODS:
        assert {"seconds", "sample_steps"} <= set(report["cost"][method])
        assert report["predicted"][method]["sample_steps"] == report["cost"][method]["sample_steps"]
    assert set(report["accuracy"]) == {"before", "after"}
    for when in ("before", "after"):
        for role in ("teacher", *METHODS):
            assert {"auc", "auc_low", "auc_high", "forgotten_percentile"} <= set(report["membership"][when][role])
    assert report["verification"]["exact"] is True
    assert report["verification"]["parameters_compared"] > 0 and report["verification"]["max_abs_diff"] == 0.0
    assert main(["ledger", "--run", str(exp.store.root), "--json"]) == 0
    ledger = json.loads(capsys.readouterr().out)
    assert ledger["chain_valid"] and ledger["requests"][0]["verified"] is True
    assert main(["certificate", "--run", str(exp.store.root), "--request", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["request_id"] == 1
    assert main(["certificate", "--run", str(exp.store.root), "--request", "7"]) == 2
