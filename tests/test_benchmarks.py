"""Smoke tests of the benchmark scripts, so they cannot rot: each runs on its smallest setting in a
subprocess, exactly as a user runs it, and its --json output and files are checked."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from purge_engine import theory

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args, "--json"], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return run_script("bench_forget.py", "--smoke", "--out", str(out)), out


@pytest.mark.slow
def test_bench_forget_smoke_measures_what_the_plan_predicts(smoke):
    result, _ = smoke
    rows = result["rows"]
    assert {(r["n_students"], r["side"]) for r in rows} == {(1, "teacher"), (1, "student"), (4, "teacher"),
                                                             (4, "student")}
    for row in rows:
        assert row["requests"] == 2 and row["assumptions_hold"]
        # the engine's measured sample-steps equal the plan's prediction, request by request
        assert row["speedup_steps"] == pytest.approx(row["plan_predicted"], rel=1e-12)
        assert row["speedup_wall"] > 0 and 0 <= row["label_share_reference"] <= 1
    teacher_side = {r["n_students"]: r for r in rows if r["side"] == "teacher"}
    assert teacher_side[1]["closed_form"] == pytest.approx(theory.teacher_side_speedup(4, 1, 1))
    # one teacher per student (c = 1): PURGE retrains one student where the baseline retrains all four
    assert teacher_side[4]["speedup_steps"] == pytest.approx(4.0, rel=0.05)
    student_side = {r["n_students"]: r for r in rows if r["side"] == "student"}
    assert student_side[1]["closed_form"] == pytest.approx(theory.student_side_speedup(4))
    assert all(r["purge_over_baseline_steps"] == pytest.approx(1.0) for r in student_side.values())


@pytest.mark.slow
def test_bench_forget_smoke_writes_csv_png_and_header(smoke):
    result, out = smoke
    assert set(result["verdicts"]) >= {"steps_within_10pct", "wall_mnist5k_nt32_within_25pct"}
    assert result["hardware"]["torch"] and result["hardware"]["cores"] >= 1
    with open(out / "bench_forget_smoke.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result["rows"]) and float(rows[0]["closed_form"]) > 0
    assert (out / "bench_forget_smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_bench_throughput_smallest_run_reports_ratios():
    result = run_script("bench_throughput.py", "--quick", "--samples", "96", "--repeats", "1", "--stacked",
                        "--models", "2")
    assert result["throughput"]["ratio"] > 0 and result["throughput"]["samples_per_step"] == 96
    assert 0 < result["checkpoint"]["save_share_of_step_by_sample_steps"]["1000"] < 1
    assert result["labels"]["label_over_training_sample_step"] > 0
    assert result["stacked"]["max_abs_param_diff"] < 1e-2  # the two paths agree to rounding
    assert set(result["verdicts"]) == {"engine_at_least_0.9_of_bare"}
