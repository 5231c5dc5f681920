"""Fixtures and helpers the engine tests share: the tiny layout, runs trained once per session (a test
that changes one works on a copy), and a snapshot of a run directory's files."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Datasets a test imports go to a private folder, never the checkout's runs/datasets (whose imports
# would otherwise show up in the catalogue tests): set before any engine module reads it.
os.environ.setdefault("PURGE_DATASETS_DIR", tempfile.mkdtemp(prefix="purge-test-datasets-"))

from purge_engine.config import PurgeConfig
from purge_engine.experiment import Experiment

# 8 teachers, 4 students, student data held out from the teachers: clean teacher-side requests.
DISJOINT_CONFIG = PurgeConfig(n_teachers=8, n_students=4, teacher_slices=2, student_slices=2, student_data="disjoint",
                              student_fraction=0.3, teacher_fraction=0.5, epochs=2, batch_size=64, threads=1)


@pytest.fixture(scope="session")
def tiny_config() -> PurgeConfig:
    """A layout that trains in about a second on 2 CPU cores: every code path, little work."""
    return PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, epochs=2, batch_size=64,
                       threads=1)


@pytest.fixture(scope="session")
def train_once(tmp_path_factory):
    """train_once(config) -> a run of that config, trained to the plan once per session and shared by
    every test that asks for the same config: a test that forgets, edits or deletes works on copy_of it."""
    runs: dict[str, Experiment] = {}

    def train(config: PurgeConfig) -> Experiment:
        key = config.to_json()  # every field, so runs that differ only in how they execute stay apart
        if key not in runs:
            exp = Experiment.create(config, tmp_path_factory.mktemp("runs") / "trained")
            exp.train()
            runs[key] = exp
        return runs[key]

    return train


@pytest.fixture(scope="session")
def disjoint_run(train_once) -> Experiment:
    """DISJOINT_CONFIG trained: the run the forget and ledger tests copy before they change it."""
    return train_once(DISJOINT_CONFIG)


def copy_of(exp: Experiment, path: Path) -> Experiment:
    """A private copy of a trained run's directory, opened."""
    shutil.copytree(exp.store.root, path)
    return Experiment.open(path)


def snapshot(root: Path, ignore: tuple[str, ...] = ("writer.lock",)) -> dict[str, bytes]:
    """Every file under a run directory, by relative path (the lock file left out unless ignore=())."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ignore}
