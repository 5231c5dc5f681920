"""The paper's scale through the CLI: 32 teachers and 8 students on the full Fashion-MNIST, then one
teacher-side forget request with --verify.

Runs exactly the commands a user types (each with --json, read back here):

    python -m purge_engine train --dataset fashion-mnist --teachers 32 --students 8 --epochs 2 --run DIR --json
    python -m purge_engine forget --run DIR --samples ID --verify --json

and records the wall seconds of each command, the engine's measured cost per role, the test accuracy per
method and the verification verdict. The forgotten sample is drawn (seeded) from the samples that sit in a
teacher shard and in no student chunk: the paper's teacher-side case. The run directory is deleted after
(unless --keep names one).

    .venv/bin/python benchmarks/bench_paper_scale.py                 # train alone: 33 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_paper_scale.py --affected-only # verify retrains only what changed
    .venv/bin/python benchmarks/bench_paper_scale.py --quick --json  # the same commands on a small digits layout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from common import ASSETS, git_commit, hardware, header_line, say, teacher_side_sample
from layouts import PAPER_FASHION_MNIST, SMALL_DIGITS

from purge_engine.cli import flag_for
from purge_engine.config import PurgeConfig
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS

SEED = 0


def layout_flags(config: PurgeConfig) -> list[str]:
    """The CLI flags that give `config`: one per field that differs from PurgeConfig's default."""
    default = PurgeConfig()
    return [part for f in fields(PurgeConfig) if getattr(config, f.name) != getattr(default, f.name)
            for part in (flag_for(f.name), str(getattr(config, f.name)))]


def cli(args: list[str]) -> tuple[dict, float]:
    """One `python -m purge_engine ... --json` command: (its JSON, its wall seconds). A failed command
    stops the benchmark with what it printed."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "purge_engine", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"`purge_engine {' '.join(args)}` exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same commands on a small digits layout")
    parser.add_argument("--affected-only", action="store_true",
                        help="verify retrains only the affected constituents (default: the whole pipeline)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (text to stderr)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="train into this run directory and keep it (default: a temporary one, deleted after)")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the result as JSON here (default: assets/bench_paper_scale.json, "
                             "not written with --quick)")
    args = parser.parse_args(argv)
    info = hardware(threads=1)
    say(header_line(info), args.json)
    layout = layout_flags(SMALL_DIGITS if args.quick else PAPER_FASHION_MNIST)
    root = Path(tempfile.mkdtemp(prefix="bench-paper-scale-"))
    run_dir = args.keep or root / "run"
    try:
        trained, train_s = cli(["train", *layout, "--run", str(run_dir)])
        say(f"train {' '.join(layout)}: {train_s:.1f} s wall", args.json)
        for role, cost in trained["cost"].items():
            say(f"  {role:<16} {cost['sample_steps']:>10,} sample-steps  {cost['seconds']:8.1f} s  "
                f"test accuracy {trained['accuracy'][role]:.4f}", args.json)
        sample = teacher_side_sample(Experiment.open(run_dir).plan, SEED)
        verify_flags = ["--verify", *(["--affected-only"] if args.affected_only else [])]
        forgot, forget_s = cli(["forget", "--run", str(run_dir), "--samples", str(sample), *verify_flags])
        verification = forgot["verification"]
        say(f"forget #{sample} with {' '.join(verify_flags)}: {forget_s:.1f} s wall; exact {verification['exact']}, "
            f"forgotten absent {verification['forgotten_absent']}, cost matches prediction "
            f"{verification['cost_matches_prediction']}; the verification itself {verification['seconds']:.1f} s",
            args.json)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "hardware": info, "commit": git_commit(), "layout": layout, "train_seconds": train_s,
        "cost": trained["cost"], "accuracy": trained["accuracy"], "test_samples": trained["samples"],
        "forgotten_sample": sample, "forget_verify_seconds": forget_s, "affected_only": args.affected_only,
        "retrained": forgot["retrained"], "verification": verification,
        "methods": [role for role in ("teacher", *METHODS) if role in trained["accuracy"]],
    }
    out = args.out or (None if args.quick else ASSETS / "bench_paper_scale.json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        say(f"wrote {out}", args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if verification["exact"] and verification["forgotten_absent"] else 1


if __name__ == "__main__":
    sys.exit(main())
