"""Smoke tests of the benchmark scripts, so they cannot rot: each runs on its smallest setting in a
subprocess, exactly as a user runs it, and its --json output and files are checked."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from purge_engine import theory
from purge_engine.sweep import SweepGrid, plan_sweep, run_sweep

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
ASSETS = BENCHMARKS.parent / "assets"


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
    for row in rows:  # where each row was measured
        assert row["torch"] == result["hardware"]["torch"] and row["cpu_model"] == result["hardware"]["cpu"]
        assert row["commit"] == result["hardware"]["commit"] and int(row["threads"]) == 1


@pytest.mark.slow
def test_bench_forget_is_run_sweep_on_the_same_grids(smoke, tmp_path):
    result, _ = smoke
    grids = [SweepGrid.from_dict(g) for g in result["grids"]]
    assert [(g.n_teachers, g.n_students, g.student_slices, g.methods) for g in grids] == [
        ((4,), (1,), (1,), ("purge", "baseline")), ((4,), (4,), (1,), ("purge", "baseline"))]
    for grid, record in zip(grids, result["layouts"], strict=True):  # the requests the sweep plans, in order
        [lp] = plan_sweep(grid)
        assert [(r["side"], r["sample_id"]) for r in record["requests"]] == list(lp.requests)
    # one layout served again by run_sweep in this process: the benchmark's sample-steps are the sweep's
    [record] = run_sweep(grids[1], tmp_path)["layouts"]
    for row in (r for r in result["rows"] if r["n_students"] == 4):
        mine = [r for r in record["requests"] if r["side"] == row["side"]]
        assert row["purge_sample_steps"] == sum(r["measured"]["purge"]["sample_steps"] for r in mine)
        assert row["reference_sample_steps"] == sum(r["reference_sample_steps"] for r in mine)
        assert row["speedup_steps"] == record["summary"][row["side"]]["speedup"]


@pytest.mark.slow
def test_bench_forget_merge_reads_the_shipped_csvs_beside_a_new_one(smoke, tmp_path):
    _, out = smoke
    old = ASSETS / "bench_forget_digits_nt32.csv"
    result = run_script("bench_forget.py", "--merge", str(old), str(out / "bench_forget_smoke.csv"), "--out",
                        str(tmp_path), "--name", "merged")
    with open(old) as handle:
        n_old = len(list(csv.DictReader(handle)))
    assert result["rows"] == n_old + 4 and "steps_within_10pct" in result["verdicts"]
    with open(tmp_path / "merged.csv") as handle:
        merged = list(csv.DictReader(handle))
    assert merged[0]["commit"] == "" and merged[-1]["commit"] == merged[-1]["commit"].strip() != ""
    assert (tmp_path / "merged.png").exists()


@pytest.mark.slow
def test_bench_throughput_smallest_run_reports_ratios():
    result = run_script("bench_throughput.py", "--quick", "--samples", "96", "--repeats", "1")
    assert result["throughput"]["ratio"] > 0 and result["throughput"]["samples_per_step"] == 96
    assert 0 < result["checkpoint"]["save_share_of_step_by_sample_steps"]["1000"] < 1
    assert result["labels"]["label_over_training_sample_step"] > 0
    assert set(result["verdicts"]) == {"engine_at_least_0.9_of_bare"}


@pytest.mark.slow
def test_soak_quick_serves_verifies_and_recovers_every_killed_request():
    result = run_script("soak.py", "--quick")
    assert result["requests_served"] == 6 and result["verified_exact"] == 6
    assert result["inexact"] == 0 and result["lost"] == 0 and result["failures"] == []
    assert result["kills"] >= 1 and len(result["layouts"]) == 2
    assert result["kills"] == (result["recovered_after_kill"] + result["killed_before_journal"]
                               + result["done_before_kill"])


@pytest.mark.slow
def test_bench_lanes_quick_times_each_width_against_the_loop_and_verifies_it():
    result = run_script("bench_lanes.py", "--quick", "--lanes", "2")
    (row,) = result["rows"]
    assert row["lanes"] == 2 and row["lanes_run"]["exact"] is True
    assert row["train_ratio"] > 0 and row["forget_ratio"] > 0
    assert row["lanes_run"]["sample_steps"] == row["loop"]["sample_steps"]  # the same work, another path


@pytest.mark.slow
def test_bench_executors_quick_reads_ray_against_the_machines_ceiling():
    result = run_script("bench_executors.py", "--quick", "--workers", "2")
    ceiling, local, ray = result["rows"]
    assert ceiling["workers"] == 2 and len(ceiling["together_seconds"]) == 2 and ceiling["ceiling"] > 0
    assert local["executor"] == "local" and local["cost_matches_prediction"]
    assert ray["executor"] == "ray" and ray["same_bits"] and ray["cost_matches_prediction"]
    assert ray["train_speedup"] == pytest.approx(local["train_seconds"] / ray["train_seconds"])
