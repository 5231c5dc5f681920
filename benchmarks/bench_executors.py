"""Executors compared in one run: in-process (local) against Ray with 1 and 2 workers.

For each dataset layout the same run is trained from scratch under each executor, then one
teacher-side forget request is served; wall seconds are timed around `train()` and `forget()`
(scoring left out: it is not part of the retraining). Ray's start-up (ray.init) and its per-task
overhead (the round trip of an empty task) are measured on their own and kept out of the timed
regions, and each executor is warmed by an untimed training first. Every executor's checkpoints are
compared by parameter hash with the local run's: the speed-up is only reported for runs that are
bitwise the same. The machine's own ceiling comes first: the same training in one process alone and
in as many processes at once as the most workers, so a Ray speed-up can be read against what the
cores give independent jobs (`ceiling`).

    .venv/bin/python benchmarks/bench_executors.py            # digits default layout and mnist-5k, ~8 min
    .venv/bin/python benchmarks/bench_executors.py --quick    # a small digits layout only
    .venv/bin/python benchmarks/bench_executors.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import hardware, header_line, say
from layouts import BY_NAME

from purge_engine.config import PurgeConfig
from purge_engine.execution.executors import LocalExecutor
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS

ROLES = ["teacher", *METHODS]


def ray_executor(workers: int):
    """A fresh local Ray cluster with `workers` CPUs; (executor, start-up seconds, per-task seconds)."""
    import ray

    from purge_engine.execution.ray_executor import RayExecutor

    ray.shutdown()
    executor = RayExecutor(workers=workers)
    executor.connect()
    return executor, executor.startup_seconds, task_overhead()


def task_overhead(n: int = 20) -> float:
    """Mean seconds of an empty task's round trip, after one warm-up."""
    import ray

    @ray.remote(num_cpus=1)
    def nothing() -> None:
        return None

    ray.get(nothing.remote())
    start = time.perf_counter()
    ray.get([nothing.remote() for _ in range(n)])
    return (time.perf_counter() - start) / n


def timed_run(config: PurgeConfig, executor, root: Path) -> dict:
    """Train from scratch, then forget one teacher-side sample; wall seconds of each and the hashes.
    A first, untimed training on the same executor warms it (imports, the dataset, torch's first
    backward pass in every process), so neither side is timed cold."""
    warm = Experiment.create(config, root.with_name(root.name + "-warm"), executor=executor)
    warm.train()
    exp = Experiment.create(config, root, executor=executor)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    exp.train()
    train_s = time.perf_counter() - start
    sample = int(exp.plan.teacher_shards[-1][0][0])
    start = time.perf_counter()
    report = exp.forget([sample], score=False)
    forget_s = time.perf_counter() - start
    return {"train_seconds": train_s, "forget_seconds": forget_s, "load_before": round(load, 2),
            "cost_matches_prediction": report.cost_matches_prediction, "hashes": exp.param_hashes(ROLES)}


def _train_seconds(config: PurgeConfig, root: str) -> float:
    """Wall seconds of one in-process training from scratch, in a process warmed by a first training
    (imports, the dataset, torch's first backward pass); run in a spawned process by ceiling."""
    Experiment.create(config, Path(root) / "warm").train()
    exp = Experiment.create(config, Path(root) / "timed")
    start = time.perf_counter()
    exp.train()
    return time.perf_counter() - start


def ceiling(config: PurgeConfig, root: Path, n: int = 2) -> dict:
    """What n cores of this machine give n independent copies of the job: the same training in one
    process alone, then in n processes at once (nothing shared, no Ray). ceiling = n * alone / slowest
    of the n: the speed-up a perfect task farm of n workers could reach here, since cores that share a
    cache and a power budget slow each other's tiny kernels down."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        alone = pool.submit(_train_seconds, config, str(root / "alone")).result()
        together = list(pool.map(_train_seconds, [config] * n, [str(root / f"together-{i}") for i in range(n)]))
    return {"alone_seconds": alone, "together_seconds": together, "ceiling": n * alone / max(together)}


def bench_layout(name: str, config: PurgeConfig, workers: list[int], root: Path, quiet: bool) -> list[dict]:
    rows = []
    if max(workers) > 1:
        top = max(workers)
        found = ceiling(config, root / f"{name}-ceiling", top)
        rows.append({"layout": name, "executor": f"{top} independent processes", "workers": top, **found})
        say(f"{name} ceiling: one training alone {found['alone_seconds']:.1f} s, {top} at once "
            f"{max(found['together_seconds']):.1f} s: {top} cores give at most {found['ceiling']:.2f}x", quiet)
    _stop_ray()  # a cluster left up by the layout before would run beside the in-process loop
    local = timed_run(config, LocalExecutor(), root / f"{name}-local")
    rows.append({"layout": name, "executor": "local", "workers": 1, **_public(local), "same_bits": True})
    say(f"{name} local: train {local['train_seconds']:.1f} s, forget {local['forget_seconds']:.1f} s", quiet)
    for w in workers:
        executor, startup, overhead = ray_executor(w)
        result = timed_run(config, executor, root / f"{name}-ray{w}")
        same = result["hashes"] == local["hashes"]
        rows.append({"layout": name, "executor": "ray", "workers": w, **_public(result), "same_bits": same,
                     "ray_startup_seconds": startup, "task_overhead_seconds": overhead,
                     "train_speedup": local["train_seconds"] / result["train_seconds"],
                     "forget_speedup": local["forget_seconds"] / result["forget_seconds"]})
        say(f"{name} ray x{w}: train {result['train_seconds']:.1f} s ({rows[-1]['train_speedup']:.2f}x local), "
            f"forget {result['forget_seconds']:.1f} s ({rows[-1]['forget_speedup']:.2f}x); start-up {startup:.1f} s, "
            f"per task {overhead * 1000:.1f} ms; bitwise equal to local: {same}", quiet)
    return rows


def _stop_ray() -> None:
    """Shut down a Ray cluster this process started, if any (without importing Ray)."""
    import sys

    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "hashes"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small digits layout")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (default 1 2)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (text to stderr)")
    args = parser.parse_args(argv)
    info = hardware()
    say(header_line(info), args.json)
    root = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    try:
        names = ["quick"] if args.quick else ["digits", "mnist-5k"]
        rows = [row for name in names for row in bench_layout(name, BY_NAME[name], args.workers, root, args.json)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps({"hardware": info, "rows": rows}, indent=2))
    timed = [r for r in rows if "same_bits" in r]
    return 0 if all(r["same_bits"] and r["cost_matches_prediction"] for r in timed) else 1


if __name__ == "__main__":
    sys.exit(main())
