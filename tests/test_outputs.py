"""outputs.py: each constituent's outputs on an evaluation set are cached by its checkpoint, reused
while the checkpoint is unchanged, recomputed when it changes, and never stand in for a damaged one."""

import shutil

import pytest
import torch

import purge_engine.rundir.outputs as outputs
import purge_engine.training as training
from purge_engine.constituents import ROLES
from purge_engine.experiment import Experiment
from purge_engine.rundir.checkpoints import CheckpointError
from purge_engine.rundir.names import OUTPUTS
from purge_engine.rundir.outputs import entry_problem
from purge_engine.threads import hold_threads
from tests.conftest import copy_of, snapshot


@pytest.fixture(scope="module")
def trained(train_once, tiny_config):
    return train_once(tiny_config)


@pytest.fixture
def forward_passes(monkeypatch):
    """How many times a constituent made a forward pass over an evaluation set."""
    calls = []
    real = training.predict_proba

    def counted(model, inputs, *args, **kwargs):
        calls.append(int(inputs.shape[0]))
        return real(model, inputs, *args, **kwargs)

    monkeypatch.setattr(outputs, "predict_proba", counted)  # the one place the cache computes outputs
    return calls


def constituent_count(exp) -> int:
    return len(exp.constituents([role for role in ROLES if role in exp.trained_roles()]))


def overwrite_outputs(path) -> None:
    """Today's incident: the tensor bytes overwritten with other numbers (every row says class 0), the
    header and the file's length unchanged, so nothing but a hash of the content tells."""
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    rows = (len(data) - header) // 4
    fake = torch.zeros(rows, dtype=torch.float32)
    fake[::10] = 1.0  # 10 classes: a one-hot on class 0 per row
    data[header:] = fake.numpy().tobytes()
    path.write_bytes(bytes(data))


TAMPER = {"other numbers": overwrite_outputs, "truncated": lambda p: p.write_bytes(p.read_bytes()[:-100])}


def test_a_second_evaluation_reads_every_output_from_the_cache_and_answers_the_same(trained, tmp_path,
                                                                                     forward_passes):
    exp = copy_of(trained, tmp_path / "run")
    shutil.rmtree(exp.store.root / OUTPUTS, ignore_errors=True)
    first = exp.evaluate()
    assert len(forward_passes) == constituent_count(exp)
    forward_passes.clear()
    before = snapshot(exp.store.root)
    again = Experiment.open(exp.store.root).evaluate()
    assert forward_passes == [] and again == first
    assert snapshot(exp.store.root) == before  # a cached evaluation writes nothing


def test_after_a_request_only_the_retrained_constituents_are_evaluated_again(disjoint_run, tmp_path,
                                                                             forward_passes):
    exp = copy_of(disjoint_run, tmp_path / "run")
    exp.evaluate()  # the test split is cached for every constituent
    forward_passes.clear()
    report = exp.forget([int(exp.plan.teacher_shards[2][0][0])], evidence=False)  # the scoring's passes alone
    retrained = sum(len(steps) for steps in report.retrained.values())
    every = constituent_count(exp)
    assert 0 < retrained < every
    # before: retained, forgotten, members for every constituent (the test split is cached);
    # after: all four sets for each retrained constituent, nothing for the others
    assert len(forward_passes) == 3 * every + 4 * retrained
    forward_passes.clear()
    cached = exp.evaluate()
    assert forward_passes == []
    shutil.rmtree(exp.store.root / OUTPUTS)
    assert Experiment.open(exp.store.root).evaluate() == cached  # what the cache held equals a fresh pass


def test_the_evidence_reads_the_scorings_cached_outputs_of_the_forgotten_samples(disjoint_run, tmp_path,
                                                                                forward_passes, monkeypatch):
    import purge_engine.audit as audit

    exp = copy_of(disjoint_run, tmp_path / "run")
    monkeypatch.setattr(audit, "extra_references", lambda *args, **kwargs: {})  # no models beyond the run's
    monkeypatch.setattr("purge_engine.contrast.snapshot", lambda *args: None)  # and no contrast
    exp.evaluate()
    forward_passes.clear()
    report = exp.forget([int(exp.plan.teacher_shards[2][0][0])])
    retrained = sum(len(steps) for steps in report.retrained.values())
    assert report.evidence["after"]["membership"]["rows"]
    assert len(forward_passes) == 3 * constituent_count(exp) + 4 * retrained  # not one pass more


def test_a_damaged_checkpoint_is_refused_though_its_outputs_are_cached(trained, tmp_path):
    exp = copy_of(trained, tmp_path / "run")
    exp.evaluate()
    target = exp.store.checkpoint_stem("teacher", 1, exp.job("teacher", 1).steps[-1].step).with_suffix(".safetensors")
    target.write_bytes(target.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(CheckpointError, match=r"teacher-1/step-\d+.*corrupted"):
        Experiment.open(exp.store.root).evaluate()


def test_an_entry_from_another_environment_is_computed_again(trained, tmp_path, forward_passes):
    exp = copy_of(trained, tmp_path / "run")
    exp.evaluate()
    forward_passes.clear()
    with hold_threads(2):  # another job of this process holds 2 threads: evaluation runs on them
        exp.evaluate()
    torch.set_num_threads(1)
    assert len(forward_passes) == constituent_count(exp)


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_a_tampered_outputs_file_is_computed_again_and_rewritten(trained, tmp_path, forward_passes, how):
    exp = copy_of(trained, tmp_path / "run")
    first = exp.evaluate()
    files = sorted((exp.store.root / OUTPUTS).glob("*/test.safetensors"))
    for path in files:
        TAMPER[how](path)
        assert entry_problem(path) is not None
    forward_passes.clear()
    assert Experiment.open(exp.store.root).evaluate() == first  # never the numbers written into the cache
    assert len(forward_passes) == len(files) == constituent_count(exp)
    assert [entry_problem(path) for path in files] == [None] * len(files)  # rewritten, hash and all


def test_an_entry_an_older_engine_wrote_without_a_hash_is_stale_not_damage(trained, tmp_path, forward_passes):
    from safetensors.torch import load_file, save_file

    from purge_engine.rundir.outputs import HASH_FIELD, read_entry

    exp = copy_of(trained, tmp_path / "run")
    first = exp.evaluate()
    path = sorted((exp.store.root / OUTPUTS).glob("*/test.safetensors"))[0]
    meta, _ = read_entry(path)
    del meta[HASH_FIELD]
    save_file(load_file(str(path)), str(path), metadata={**meta, "format": "1"})
    assert entry_problem(path) is None  # never answered from: the next evaluation replaces it
    forward_passes.clear()
    assert Experiment.open(exp.store.root).evaluate() == first and len(forward_passes) == 1
    assert read_entry(path)[0]["format"] == "2"
