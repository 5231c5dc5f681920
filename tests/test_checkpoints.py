"""checkpoints.py and files.py: a checkpoint is safetensors plus a JSON sidecar (nothing pickled), and a
damaged checkpoint or sidecar is refused with a sentence naming it, changing nothing."""

import json

import pytest

from purge_engine.experiment import Experiment
from purge_engine.rundir.checkpoints import CheckpointError, hash_tensors
from tests.conftest import copy_of, snapshot


@pytest.fixture(scope="module")
def trained(train_once, tiny_config):
    return train_once(tiny_config)


def test_every_step_is_checkpointed_with_a_sidecar_and_nothing_is_pickled(trained):
    sidecar = json.loads(trained.store.checkpoint_stem("purge", 1, 3).with_suffix(".json").read_text())
    assert sidecar["role"] == "purge" and sidecar["step"] == 3 and len(sidecar["label_keys"]) == 4
    assert set(sidecar["environment"]) == {"torch", "cpu_capability", "threads", "device", "memory_format",
                                           "path"}
    assert sidecar["param_hash"] == hash_tensors(trained.parameters("purge", 1))
    assert not list(trained.store.root.rglob("*.pt")) and not list(trained.store.root.rglob("*.pkl"))


def test_a_corrupted_checkpoint_gives_a_clear_error_and_changes_nothing(trained, tmp_path):
    run = tmp_path / "run"
    copy_of(trained, run)
    target = Experiment.open(run).store.checkpoint_stem("teacher", 1, 1).with_suffix(".safetensors")
    target.write_bytes(target.read_bytes()[:-100] + b"\0" * 100)
    before = snapshot(run, ignore=())
    with pytest.raises(CheckpointError, match=r"teacher-1/step-1.*corrupted"):
        Experiment.open(run).evaluate()
    assert snapshot(run, ignore=()) == before


def test_a_truncated_checkpoint_gives_a_clear_error_and_changes_nothing(trained, tmp_path):
    run = tmp_path / "run"
    copy_of(trained, run)
    target = Experiment.open(run).store.checkpoint_stem("purge", 0, 3).with_suffix(".safetensors")
    target.write_bytes(target.read_bytes()[:50])
    before = snapshot(run, ignore=())
    with pytest.raises(CheckpointError, match=r"purge-0/step-3.*corrupted or truncated"):
        Experiment.open(run).evaluate()
    assert snapshot(run, ignore=()) == before


def test_a_garbled_sidecar_gives_a_clear_error(trained, tmp_path):
    run = tmp_path / "run"
    copy_of(trained, run)
    sidecar = Experiment.open(run).store.checkpoint_stem("teacher", 0, 1).with_suffix(".json")
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match="teacher-0/step-1.*not valid JSON"):
        Experiment.open(run).train()
