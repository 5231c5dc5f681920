"""The storage estimate against what a trained run really writes."""

from purge_engine.experiment import Experiment
from purge_engine.storage import storage_estimate


def test_estimate_matches_the_files_a_run_writes(tmp_path, tiny_config):
    exp = Experiment.create(tiny_config, tmp_path / "run")
    estimate = storage_estimate(exp.config, exp.plan)
    exp.train()
    checkpoints = list((tmp_path / "run" / "checkpoints").rglob("*.safetensors"))
    assert len(checkpoints) == estimate["checkpoints"]
    written = sum(p.stat().st_size for p in (tmp_path / "run" / "checkpoints").rglob("*") if p.is_file())
    assert abs(written - estimate["teacher_checkpoints"] - estimate["student_checkpoints"]) < 0.05 * written
    labels = sum(p.stat().st_size for p in (tmp_path / "run" / "soft_labels").rglob("*.safetensors"))
    assert 0.9 * estimate["soft_labels"] <= labels <= 1.2 * estimate["soft_labels"]
    exp.evaluate()
    outputs = sum(p.stat().st_size for p in (tmp_path / "run" / "outputs").rglob("*.safetensors"))
    assert 0.9 * estimate["outputs"] <= outputs <= 1.1 * estimate["outputs"]
