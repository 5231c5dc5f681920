"""What the evidence of forgetting costs (DESIGN section 14), on the default digits run.

Trains the default layout once, copies it, and serves the same forget request on each copy: once
without scoring (score=False: the retraining alone) and once with it (accuracy, the population check,
the per-sample membership test before and after, canary rates, and the approximate contrast with its
relearning and quantisation stress tests). The difference is the evidence's cost. Then `audit` (which
reads the ledger and ranks the pool by memorisation) and the reference's share of `verify` (the same
tests on the from-scratch reference). Repeated on fresh copies; medians printed with the machine.

    .venv/bin/python benchmarks/bench_audit.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_audit.py --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import ASSETS, hardware, header_line, timed
from layouts import DEFAULT_DIGITS

from purge_engine import audit
from purge_engine.experiment import Experiment

SAMPLES = 3  # teacher-side samples of the demo's usual request


def request_ids(exp: Experiment) -> list[int]:
    """The SAMPLES most memorised teacher-side samples (what the Forget page's ranking offers first)."""
    return [int(i) for i in audit.memorisation(exp)["sample_id"][:SAMPLES]]


def one_round(trained: Experiment, work: Path, ids: list[int]) -> dict:
    plain, scored = work / "plain", work / "scored"
    for path in (plain, scored):
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(trained.store.root, path)
    bare, _ = timed(lambda: Experiment.open(plain).forget(ids, score=False))
    exp = Experiment.open(scored)
    full, _ = timed(lambda: exp.forget(ids))
    read, report = timed(lambda: exp.audit())
    verify, result = timed(lambda: exp.verify())
    return {"forget_without_evidence_s": bare, "forget_with_evidence_s": full, "evidence_s": full - bare,
            "audit_s": read, "verify_s": verify, "exact": result["exact"],
            "p_before": [r["p_before"] for r in report["membership"] if r["role"] == "teacher"],
            "p_after": [r["p_after"] for r in report["membership"] if r["role"] == "teacher"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: print only)")
    args = parser.parse_args(argv)
    info = hardware()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = Path(tmp)
        trained = Experiment.create(DEFAULT_DIGITS, work / "trained")
        train_s, _ = timed(trained.train)
        ids = request_ids(trained)
        rounds = [one_round(trained, work, ids) for _ in range(args.repeats)]
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k.endswith("_s")}
    result = {"hardware": info, "config": "PurgeConfig() defaults (digits)", "train_s": train_s, "samples": ids,
              "median": median, "rounds": rounds, "all_exact": all(r["exact"] for r in rounds),
              "evidence_and_audit_s": median["evidence_s"] + median["audit_s"]}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(header_line(info))
    print(f"default digits run trained in {train_s:.1f} s; request: samples {ids}")
    for key, value in median.items():
        print(f"  {key:<28} {value:6.2f} s (median of {args.repeats})")
    print(f"  evidence + audit: {result['evidence_and_audit_s']:.2f} s; all exact: {result['all_exact']}")
    return 0


if __name__ == "__main__":
    ASSETS.mkdir(exist_ok=True)
    sys.exit(main())
