"""cli.py: plan and theory as JSON and text, config files under flags, field-named errors, the progress bar."""

import io
import json

import pytest

from purge_engine.cli import ProgressBar, main
from purge_engine.config import PurgeConfig
from purge_engine.datasets.sources import DATASETS
from purge_engine.events import StepEvent


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_json_lists_each_students_teachers(capsys):
    report = run_json(capsys, "plan", "--teachers", "6", "--students", "4", "--student-slices", "3")
    assert report["mapping"] == [[0, 1], [2, 3], [4], [5]]
    assert report["config"]["n_teachers"] == 6
    assert len(report["students"][0]["chunks"]) == 2
    assert report["training_cost"]["purge"]["sample_steps"] > 0


def test_plan_with_samples_reports_scope_and_predicted_cost(capsys):
    report = run_json(capsys, "plan", "--student-data", "disjoint", "--student-fraction", "0.5", "--samples", "3,17,42")
    assert report["scope"]["sample_ids"] == [3, 17, 42]
    assert set(report["predicted"]) == {"teacher", "purge", "single_teacher", "baseline", "full_retrain"}


def test_plan_prints_a_readable_layout(capsys):
    assert main(["plan", "--dataset", "mnist-5k", "--teachers", "4", "--students", "2"]) == 0
    out = capsys.readouterr().out
    assert "Student 2 <- Teachers 3, 4" in out
    assert "chunk 2: labelled by Teachers 3+4" in out


def test_theory_json_gives_the_closed_forms(capsys):
    row = run_json(capsys, "theory", "--teachers", "32", "--students", "8", "--student-slices", "1")
    assert row["teacher_side_speedup"] == pytest.approx(10.6667, abs=1e-4)
    rows = run_json(capsys, "theory", "--teachers", "32")["rows"]
    assert [round(r["teacher_side_speedup"], 2) for r in rows] == [1.48, 2.91, 5.65, 10.67, 19.2, 32.0]


def test_bad_config_exits_2_with_the_field_named(capsys):
    assert main(["plan", "--teachers", "4", "--students", "5"]) == 2
    assert "n_students: got 5" in capsys.readouterr().err


def test_config_file_then_flags(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"n_teachers": 4, "n_students": 2, "seed": 9}))
    report = run_json(capsys, "plan", "--config", str(path), "--students", "1")
    assert (report["config"]["n_teachers"], report["config"]["n_students"], report["config"]["seed"]) == (4, 1, 9)


def test_plan_refuses_a_range_wider_than_the_pool_at_once(capsys):
    assert main(["plan", "--samples", "0-99999999999"]) == 2  # refused before the range is built
    n_pool = DATASETS[PurgeConfig().dataset].n_train
    assert f"samples: got '0-99999999999', ids must be in [0, {n_pool - 1}]" in capsys.readouterr().err


def test_progress_bar_counts_the_sample_steps_the_job_announces():
    """The bar's total is the job's first event; a forget job's reused steps are not work, a training's are."""
    from purge_engine.events import TotalEvent

    out = io.StringIO()
    with ProgressBar(stream=out) as bar:
        bar(TotalEvent("total", 300, what="forget"))
        bar(StepEvent("reused", "teacher", 0, 0, 2, samples=100, epochs=1))
        assert bar.progress.sample_steps == 0 and bar.bar.n == 0
        bar(StepEvent("trained", "purge", 1, 1, 2, samples=100, epochs=3))
        assert bar.bar.n == 300
    text = out.getvalue()
    assert "forget: 100%" in text and "300/300 sample-steps" in text and "PURGE student 2 step 2/2" in text
    with ProgressBar(stream=io.StringIO()) as training:
        training(TotalEvent("total", 200, counts_reused=True, what="train"))
        training(StepEvent("reused", "teacher", 0, 0, 2, samples=100, epochs=1))
        assert training.bar.n == 100


def test_a_full_retrain_after_a_request_gets_a_bar_of_its_own():
    from purge_engine.events import FULL_RETRAIN, PhaseEvent, TotalEvent

    out = io.StringIO()
    with ProgressBar(stream=out) as bar:
        bar(TotalEvent("total", 100, what="forget"))
        bar(StepEvent("trained", "teacher", 0, 1, 2, samples=50, epochs=2))
        bar(PhaseEvent("phase", FULL_RETRAIN))
        bar(TotalEvent("total", 400, counts_reused=True, what=FULL_RETRAIN))
        bar(StepEvent("trained", "teacher", 0, 0, 2, samples=40, epochs=5))
        assert bar.bar.n == 200 and bar.bar.total == 400  # the full retrain's own count, not the request's
        assert bar.progress.sample_steps == 100  # the request's fold kept its own
    text = out.getvalue()
    assert "forget: 100%" in text and "full_retrain:  50%" in text


def test_a_runs_own_config_json_is_accepted_by_config(tmp_path, capsys):
    """config.json also records how the run was last executed ("environment"): not a field, not refused."""
    from purge_engine.cli import main
    from purge_engine.config import PurgeConfig

    stored = PurgeConfig(n_teachers=6, n_students=3).to_dict() | {"environment": {"executor": "local"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(stored))
    assert main(["plan", "--config", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_teachers"] == 6 and report["n_students"] == 3
