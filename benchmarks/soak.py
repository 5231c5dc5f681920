"""Soak: many random forget requests on a few small layouts, each verified against its from-scratch
reference, with SIGKILLs injected into a share of them (issue 17).

Per request, a kind is drawn: teacher-side (one sample only a teacher shard holds), student-side (one
only a student shard holds), both (one sample in a teacher and a student shard, on overlap layouts),
several (2-6 samples anywhere), or an emptied slice (every remaining sample of one teacher or student
slice). It is served in this process, or, for a share of requests, by a child process that is killed
with SIGKILL at a random moment of its work (uniform over 1.3x the layout's mean serve time, so some
kills land after the request is done). The run is then reopened, which cleans the temp files the kill
left and finishes the journaled request (forget.finish_pending); a request killed before it was
journaled is served again. Then:
  - verify(affected_only=True): the reference retrains, from seeded inits and on the dataset rebuilt
    without every forgotten sample, the constituents the request affected, and reuses the others only
    where the reference's own keys match; every constituent's parameters are compared with torch.equal.
    Every --full-every-th request is verified with a reference that trains everything (affected_only=False);
  - check_run: the run is whole against its manifest (no file missing, corrupted or inconsistent);
  - nothing lost: no request left pending, every requested id forgotten in the plan, the ledger's chain valid.
When a run has lost half its samples a fresh one of the same layout is trained. --executor chooses how
every training, request, recovery and reference runs (local, ray: one local Ray cluster for the whole
soak and one per killed child, or lanes with --lanes W); a killed request is finished on the same
executor, since the path decides the bits.

    .venv/bin/python benchmarks/soak.py --quick --json     # under a minute: what the tests run
    .venv/bin/python benchmarks/soak.py --requests 100 --executor ray
    nice .venv/bin/python benchmarks/soak.py --minutes 15  # as many requests as fit
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import hardware, header_line, say
from layouts import SOAK

from purge_engine.check import check_run
from purge_engine.config import EXECUTORS
from purge_engine.execution.choice import make_executor
from purge_engine.experiment import Experiment
from purge_engine.rundir.leftovers import leftovers
from purge_engine.rundir.store import RunStore

KINDS = ("teacher", "student", "both", "several", "empty_slice")
KIND_WEIGHTS = (0.3, 0.25, 0.15, 0.2, 0.1)


# -- drawing requests ---------------------------------------------------------------------------------
def draw_request(plan, rng: np.random.Generator) -> tuple[str, list[int]] | None:
    """(kind, sample ids) of a random request the plan can serve; None when the run has little left."""
    where = plan.locations()
    teacher, student = where["teacher"] >= 0, where["student"] >= 0
    pools = {"teacher": np.flatnonzero(teacher & ~student), "student": np.flatnonzero(student & ~teacher),
             "both": np.flatnonzero(teacher & student), "several": np.flatnonzero(teacher | student)}
    if pools["several"].size < 50:
        return None
    kind = str(rng.choice(KINDS, p=KIND_WEIGHTS))
    if kind == "empty_slice":
        slices = [s for shard in plan.teacher_shards for s in shard if s.size] + \
                 [s for chunks in plan.student_shards for c in chunks for s in c if s.size]
        return kind, sorted(int(i) for i in slices[rng.integers(len(slices))])
    if kind == "both" and pools["both"].size == 0:  # a disjoint layout: one sample of each side
        if pools["teacher"].size and pools["student"].size:
            return kind, sorted(int(rng.choice(pools[side])) for side in ("teacher", "student"))
        kind = "several"
    pool = pools[kind] if pools[kind].size else pools["several"]
    n = int(rng.integers(2, 7)) if kind == "several" else 1
    return kind, sorted(int(i) for i in rng.choice(pool, size=min(n, pool.size), replace=False))


# -- a request served by a child that is killed -----------------------------------------------------
def executor_of(args):
    return make_executor(args.executor, lanes=args.lanes if args.executor == "lanes" else None)


def open_on(run: Path | str, executor) -> Experiment:
    """The run reopened on `executor`: temp files a kill left are cleaned, and a journaled request is
    finished on the executor (the path it was served on decides its bits)."""
    exp = Experiment.open(run, finish_pending=False, executor=executor)
    exp.finish_pending()
    return exp


def child(run: str, samples: str, executor) -> int:
    """--child: open the run, say "ready", serve the request (the parent kills this process)."""
    exp = open_on(run, executor)
    exp.executor.connect()  # a Ray child starts its own local cluster before it says ready
    print("ready", flush=True)
    exp.forget([int(i) for i in samples.split(",")], score=False)
    print("done", flush=True)
    return 0


def serve_and_kill(run: Path, ids: list[int], window: float, rng: np.random.Generator, flags: list[str]) -> dict:
    """Serve the request in a child, SIGKILL it after a random delay once it is ready; what it left."""
    command = [sys.executable, __file__, "--child", str(run), "--samples", ",".join(map(str, ids)), *flags]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    ready = proc.stdout.readline().strip() == "ready"
    delay = float(rng.uniform(0, window))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = proc.stdout.read()
    return {"ready": ready, "delay": delay, "finished_first": "done" in out,
            "temp_files": len([p for p in leftovers(RunStore(run)) if p.name.endswith(".tmp")]),
            "stderr": proc.stderr.read()[-500:]}


def recover(run: Path, ids: list[int], request_id: int, executor) -> tuple[Experiment, str]:
    """Reopen after the kill (finishing a journaled request); serve it again if it never was journaled."""
    exp = open_on(run, executor)  # cleans the kill's temp files, finishes the pending request
    journaled = any(e["request_id"] == request_id for e in exp.ledger.entries())
    if not journaled:
        exp.forget(ids, score=False)
        return exp, "killed before it was journaled: served again"
    return exp, "finished on reopen"


# -- the loop -----------------------------------------------------------------------------------------
class Soak:
    def __init__(self, args):
        self.args, self.rng = args, np.random.default_rng(args.seed)
        self.root = Path(tempfile.mkdtemp(prefix="soak-", dir=args.work))
        self.counts: Counter = Counter()
        self.by_kind: Counter = Counter()
        self.failures: list[str] = []
        self.serve_seconds: dict[str, list[float]] = {}
        self.runs: dict[str, Experiment] = {}
        self.fresh: Counter = Counter()
        self.executor = executor_of(args)
        self.flags = ["--executor", args.executor, *(["--lanes", str(args.lanes)] if args.lanes else [])]

    def run_of(self, layout: str) -> Experiment:
        if layout not in self.runs:
            self.fresh[layout] += 1
            exp = Experiment.create(SOAK[layout], self.root / f"{layout}-{self.fresh[layout]}", executor=self.executor)
            exp.train()
            self.runs[layout] = exp
        return self.runs[layout]

    def one(self, layout: str, index: int) -> None:
        exp = self.run_of(layout)
        drawn = draw_request(exp.plan, self.rng)
        if drawn is None:  # the run has lost most of its samples: start a fresh one
            shutil.rmtree(exp.store.root, ignore_errors=True)
            del self.runs[layout]
            exp, drawn = self.run_of(layout), draw_request(self.run_of(layout).plan, self.rng)
        kind, ids = drawn
        request_id = exp.ledger.next_request_id()
        killed = self.rng.random() < self.args.kill_share
        if killed:
            exp = self.killed(layout, exp, ids, request_id)
        else:
            start = time.perf_counter()
            exp.forget(ids, score=False)
            self.serve_seconds.setdefault(layout, []).append(time.perf_counter() - start)
        self.runs[layout] = exp
        self.counts["served"] += 1
        self.by_kind[kind] += 1
        self.judge(exp, layout, index, kind, ids, request_id)

    def killed(self, layout: str, exp: Experiment, ids: list[int], request_id: int) -> Experiment:
        times = self.serve_seconds.get(layout) or [1.0]
        left = serve_and_kill(exp.store.root, ids, 1.3 * float(np.mean(times)), self.rng, self.flags)
        self.counts["kills"] += 1
        self.counts["temp_files_left_by_kills"] += left["temp_files"]
        if not left["ready"]:
            self.failures.append(f"a child never became ready: {left['stderr']}")
        exp, how = recover(exp.store.root, ids, request_id, self.executor)
        if left["finished_first"]:
            self.counts["done_before_kill"] += 1
        elif how == "finished on reopen":
            self.counts["recovered_after_kill"] += 1
        else:
            self.counts["killed_before_journal"] += 1
        if leftovers(exp.store):
            self.failures.append(f"{layout}: temp files left after reopening: {leftovers(exp.store)[:3]}")
        return exp

    def judge(self, exp: Experiment, layout: str, index: int, kind: str, ids: list[int], request_id: int) -> None:
        full = self.args.full_every and (index + 1) % self.args.full_every == 0
        result = exp.verify(request_id, affected_only=not full)
        self.counts["verified_full" if full else "verified_affected_only"] += 1
        what = f"{layout} request {request_id} ({kind}, {len(ids)} samples)"
        if result["exact"]:
            self.counts["verified_exact"] += 1
        else:
            self.failures.append(f"{what}: not exact: {result['reason']}")
        lost = self.lost(exp, ids)
        if lost:
            self.counts["lost"] += 1
            self.failures.append(f"{what}: lost: {lost}")

    @staticmethod
    def lost(exp: Experiment, ids: list[int]) -> str:
        """What a request might have lost: left pending, ids not forgotten, a broken chain, a damaged run."""
        problems = []
        if exp.ledger.pending():
            problems.append(f"requests {exp.ledger.pending()} left pending")
        if not set(ids) <= exp.plan.forgotten:
            problems.append("some ids are not forgotten in the plan")
        ok, detail = exp.ledger.verify_chain()
        if not ok:
            problems.append(detail)
        check = check_run(exp.store.root)
        if not check["run_whole"]:
            problems.append(f"check: {check['damaged'][:3]}")
        return "; ".join(problems)

    def go(self) -> dict:
        start, deadline = time.perf_counter(), time.perf_counter() + 60 * self.args.minutes
        layouts = list(SOAK)[: self.args.layouts]
        for layout in layouts:
            self.run_of(layout)
        trained = time.perf_counter() - start
        i = 0
        while i < self.args.requests and time.perf_counter() < deadline:
            self.one(layouts[i % len(layouts)], i)
            i += 1
            if i % 25 == 0:
                say(f"{i} requests, {self.counts['verified_exact']} exact, {self.counts['kills']} kills, "
                    f"{len(self.failures)} failures, {time.perf_counter() - start:.0f} s", self.args.json)
        shutil.rmtree(self.root, ignore_errors=True)
        return self.summary(layouts, trained, time.perf_counter() - start)

    def summary(self, layouts, trained: float, seconds: float) -> dict:
        c = self.counts
        return {"hardware": hardware(), "layouts": {name: SOAK[name].to_dict() for name in layouts},
                "requests_served": c["served"], "verified_exact": c["verified_exact"],
                "inexact": c["served"] - c["verified_exact"], "lost": c["lost"],
                "verified_affected_only": c["verified_affected_only"], "verified_full": c["verified_full"],
                "kills": c["kills"], "recovered_after_kill": c["recovered_after_kill"],
                "killed_before_journal": c["killed_before_journal"], "done_before_kill": c["done_before_kill"],
                "temp_files_left_by_kills": c["temp_files_left_by_kills"], "by_kind": dict(self.by_kind),
                "fresh_runs": dict(self.fresh), "failures": self.failures, "seconds": round(seconds, 1),
                "training_seconds": round(trained, 1), "executor": self.executor.describe(),
                "seed": self.args.seed}


def print_summary(s: dict) -> None:
    print(header_line(s["hardware"]))
    print(f"{s['requests_served']} forget requests on {len(s['layouts'])} layouts ({', '.join(s['layouts'])}) in "
          f"{s['seconds']:.0f} s; kinds {s['by_kind']}")
    print(f"verified exact: {s['verified_exact']}/{s['requests_served']} ({s['verified_affected_only']} against an "
          f"affected-only reference, {s['verified_full']} against a full one); inexact {s['inexact']}; "
          f"lost {s['lost']}")
    print(f"killed with SIGKILL: {s['kills']}: recovered after the kill (finished on reopen) "
          f"{s['recovered_after_kill']}, killed before journaling (served again) {s['killed_before_journal']}, "
          f"done before the kill landed {s['done_before_kill']}; temp files the kills left "
          f"{s['temp_files_left_by_kills']} (all cleaned on reopen)")
    for failure in s["failures"]:
        print(f"  FAILURE: {failure}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="forget requests to serve (default 1000)")
    parser.add_argument("--minutes", type=float, default=600.0, help="stop after this much wall time")
    parser.add_argument("--kill-share", type=float, default=0.25, help="share of requests served by a killed child")
    parser.add_argument("--full-every", type=int, default=10,
                        help="every N-th request verified against a reference that trains everything (0: never)")
    parser.add_argument("--layouts", type=int, default=len(SOAK), help=f"how many of the {len(SOAK)} layouts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=None, help="folder for the runs (default: the system temp folder)")
    parser.add_argument("--quick", action="store_true", help="2 layouts, 6 requests, about half killed: under 30 s")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="how chains are trained (default local)")
    parser.add_argument("--lanes", type=int, default=None, help="lanes per group for --executor lanes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--samples", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.samples, executor_of(args))
    if args.quick:
        args.requests, args.layouts, args.kill_share, args.full_every = 6, 2, 0.5, 6
    summary = Soak(args).go()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0 if summary["inexact"] == 0 and summary["lost"] == 0 and not summary["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
