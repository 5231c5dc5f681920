"""Lanes against the one-at-a-time loop, in one run: training from scratch and one teacher-side forget
request, on digits (the default layout) and mnist-5k, for several lane counts W.

Every configuration trains the same run from scratch and then serves the same seeded teacher-side
request (score=False: scoring is not retraining); wall seconds are timed around train() and
forget(). The ratio printed is loop seconds / lanes seconds (above 1: lanes are faster). Each lanes
run is also verified against its own from-scratch reference (the lanes path is never compared
bitwise with the loop); the ratio is reported only for runs that verify exact. On a CUDA machine the
same grid runs on the GPU as well.

    .venv/bin/python benchmarks/bench_lanes.py                 # digits (W in 1 4 8 32), mnist-5k (1 4 8)
    .venv/bin/python benchmarks/bench_lanes.py --quick --json  # a small digits layout, W in 1 4
    python3 benchmarks/bench_lanes.py --devices cuda --layouts mnist-5k --teachers 32 --lanes 1 4 8 32 \
        --name bench_lanes_cuda_nt32                             # the GPU check (benchmarks/gpu_check.sh)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ASSETS, git_commit, hardware, header_line, say, teacher_side_sample
from layouts import BY_NAME

from purge_engine.config import PurgeConfig
from purge_engine.execution.choice import make_executor
from purge_engine.experiment import Experiment


def measure(config: PurgeConfig, executor, root: Path, verify: bool) -> dict:
    """Train from scratch, then one teacher-side request: wall seconds of each, and the verdict."""
    run = root / executor.path.replace(":", "-")
    shutil.rmtree(run, ignore_errors=True)
    exp = Experiment.create(config, run, executor=executor)
    start = time.perf_counter()
    costs = exp.train()
    train_s = time.perf_counter() - start
    sample = teacher_side_sample(exp.plan, seed=0)
    start = time.perf_counter()
    exp.forget([sample], score=False)
    forget_s = time.perf_counter() - start
    exact = exp.verify(affected_only=True)["exact"] if verify else None
    shutil.rmtree(run, ignore_errors=True)
    return {"train_seconds": train_s, "forget_seconds": forget_s, "exact": exact,
            "sample_steps": sum(c.sample_steps for c in costs.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small digits layout, W in 1 4")
    parser.add_argument("--lanes", type=int, nargs="+", default=None,
                        help="lane counts (default 1 4 8 32 on digits, 1 4 8 on mnist-5k)")
    parser.add_argument("--layouts", nargs="+", choices=["digits", "mnist-5k"], default=["digits", "mnist-5k"],
                        help="layouts to measure (default both; --quick measures its own small one)")
    parser.add_argument("--teachers", type=int, default=None,
                        help="N_t for every layout (default: the layout's own, 8); students stay at most N_t")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None,
                        help="devices to measure (default: the CPU, and CUDA where there is a GPU)")
    parser.add_argument("--name", default="bench_lanes", help="the assets/NAME.json the figures go to")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (text to stderr)")
    args = parser.parse_args(argv)
    if args.teachers is not None and not 1 <= args.teachers <= 1024:
        parser.error(f"--teachers: got {args.teachers}, must be from 1 to 1024")
    if args.devices and "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices: got cuda, but no CUDA device is available here")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", args.name):
        parser.error(f"--name: got {args.name!r}, must be letters, digits, '_' and '-'")
    torch.set_num_threads(1)
    devices = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    info = hardware("cuda" if "cuda" in devices else "cpu", threads=1)
    say(header_line(info), args.json)
    widths = {"quick": args.lanes or [1, 4], "digits": args.lanes or [1, 4, 8, 32], "mnist-5k": args.lanes or [1, 4, 8]}
    layouts = ["quick"] if args.quick else args.layouts
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench-lanes-"))
    try:
        for device in devices:
            for layout in layouts:
                config = BY_NAME[layout].replace(device=device, threads=1)
                if args.teachers is not None:
                    config = config.replace(n_teachers=args.teachers, n_students=min(config.n_students, args.teachers))
                loop = measure(config, make_executor("local"), root, verify=False)
                say(f"{device} {layout} (N_t = {config.n_teachers}, N_s = {config.n_students}): "
                    f"loop train {loop['train_seconds']:.1f} s, "
                    f"forget {loop['forget_seconds']:.1f} s", args.json)
                for width in widths[layout]:
                    lanes = measure(config, make_executor("lanes", lanes=width), root, verify=True)
                    row = {"device": device, "layout": layout, "n_teachers": config.n_teachers,
                           "n_students": config.n_students, "lanes": width, "loop": loop, "lanes_run": lanes,
                           "train_ratio": loop["train_seconds"] / lanes["train_seconds"] if lanes["exact"] else None,
                           "forget_ratio": loop["forget_seconds"] / lanes["forget_seconds"] if lanes["exact"] else None}
                    rows.append(row)
                    say(f"  W={width:<3} train {lanes['train_seconds']:6.1f} s ({row['train_ratio']:.2f}x the loop)  "
                        f"forget {lanes['forget_seconds']:5.1f} s ({row['forget_ratio']:.2f}x)  exact {lanes['exact']}",
                        args.json)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {"hardware": info, "commit": git_commit(), "rows": rows}
    if not args.quick:
        (ASSETS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if all(r["lanes_run"]["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
