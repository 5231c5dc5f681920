"""The writer lock that train, evaluate, verify and forget share, and the ledger's anchor (issue 17,
items 2 and 3): a verify that overlaps a forget waits and then judges the request that ran, one that
cannot wait names the request in progress; a ledger cut short, emptied or replaced is detected."""

import json
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from purge_engine.events import StepEvent
from purge_engine.experiment import Experiment
from purge_engine.rundir.ledger import Ledger, LedgerError
from purge_engine.rundir.lock import RunBusy, run_is_busy
from tests.conftest import copy_of

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def served_run(train_once, tiny_config, tmp_path) -> Experiment:
    """A private copy of the tiny run after request 1 (a teacher-side sample)."""
    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    exp.forget([int(exp.plan.teacher_shards[0][0][0])], score=False)
    return exp


@contextmanager
def forget_in_progress(root: Path, sample_id: int):
    """Request 2 served in a thread, held at its first training step until the block ends."""
    training, release, done = threading.Event(), threading.Event(), {}

    def hold(event) -> None:
        if getattr(event, "kind", "") == "training" and not training.is_set():
            training.set()
            release.wait(timeout=120)

    def serve() -> None:
        done["report"] = Experiment.open(root).forget([sample_id], on_event=hold, score=False)

    thread = threading.Thread(target=serve)
    thread.start()
    assert training.wait(timeout=120)
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=120)
    assert done["report"].request_id == 2


def _second_sample(exp: Experiment) -> int:
    return int(exp.plan.teacher_shards[-1][0][0])


def test_a_verify_that_overlaps_a_forget_waits_and_judges_the_request_that_ran(served_run):
    root = served_run.store.root
    stale = Experiment.open(root)  # opened while request 1 is the latest
    said, verdict = [], {}
    stale.on_wait = said.append
    with forget_in_progress(root, _second_sample(served_run)):
        waiter = threading.Thread(target=lambda: verdict.update(stale.verify()))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive()  # waiting for the writer lock, not verifying a stale plan
    waiter.join(timeout=120)
    assert said and "request 2 is in progress; waiting for it to finish" in said[0]
    assert verdict["exact"] is True, verdict["reason"]
    verified = [e for e in served_run.ledger.entries() if e["kind"] == "verified"]
    assert [(e["request_id"], e["body"]["exact"]) for e in verified] == [(2, True)]


def test_train_evaluate_and_verify_that_cannot_wait_name_the_request_in_progress(served_run):
    root = served_run.store.root
    exp = Experiment.open(root, finish_pending=False)
    exp.lock_timeout = 0.3
    with forget_in_progress(root, _second_sample(served_run)):
        assert run_is_busy(exp.store) == "request 2 is in progress"
        for verb in (exp.verify, exp.evaluate, exp.train):
            with pytest.raises(RunBusy, match=r"run: request 2 is in progress in .* \(waited 0.3 s for it\)"):
                verb()
        events = []
        with pytest.raises(RunBusy):
            exp.train(on_event=events.append)
        assert [e.name for e in events] == ["waiting"] and "request 2" in events[0].detail
    assert run_is_busy(exp.store) is None
    assert [e["kind"] for e in exp.ledger.entries()] == ["started", "done", "started", "done"]


def test_another_process_waits_saying_so_then_stops_with_the_request_named(served_run):
    root = served_run.store.root
    with forget_in_progress(root, _second_sample(served_run)):
        done = subprocess.run([sys.executable, "-m", "purge_engine", "evaluate", "--run", str(root), "--wait", "0.5"],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "run: request 2 is in progress; waiting for it to finish (up to 0.5 s)" in done.stderr
    assert "error: run: request 2 is in progress" in done.stderr


def test_a_train_opened_before_another_process_forgot_reads_the_new_plan(served_run):
    root = served_run.store.root
    stale = Experiment.open(root)
    sample = _second_sample(served_run)
    Experiment.open(root).forget([sample], score=False)
    trained = []
    stale.train(on_event=lambda e: trained.append(e) if isinstance(e, StepEvent) and e.kind == "trained" else None)
    assert trained == []  # nothing retrained on the stale plan, which still held the sample
    assert sample in stale.plan.forgotten


# -- the ledger's anchor ------------------------------------------------------------------------------
def _anchor(exp: Experiment) -> dict:
    return json.loads((exp.store.root / "ledger.head.json").read_text())


def test_every_commit_anchors_the_chain_outside_the_database(served_run):
    entries = served_run.ledger.entries()
    assert _anchor(served_run) == {"count": len(entries), "head": entries[-1]["hash"]}
    served_run.ledger.append(1, "verified", {"exact": None})
    assert _anchor(served_run)["count"] == len(entries) + 1


def test_an_anchor_that_lags_after_a_crash_is_accepted_and_caught_up(served_run):
    first = served_run.ledger.entries()[0]
    (served_run.store.root / "ledger.head.json").write_text(json.dumps({"count": 1, "head": first["hash"]}))
    served_run.ledger.check()  # a kill between commit and anchor write: the database is ahead, never behind
    assert served_run.ledger.verify_chain()[0]
    served_run.ledger.append(1, "verified", {"exact": None})
    assert _anchor(served_run)["count"] == 3


def test_a_ledger_without_an_anchor_is_read_and_anchored_at_its_next_commit(served_run):
    (served_run.store.root / "ledger.head.json").unlink()  # a run from before anchoring
    assert len(served_run.ledger.entries()) == 2
    served_run.ledger.append(1, "verified", {"exact": None})
    assert _anchor(served_run)["count"] == 3


def test_a_zero_byte_ledger_before_any_commit_is_an_empty_ledger(tmp_path):
    (tmp_path / "ledger.sqlite").write_bytes(b"")  # sqlite creates the file before its first commit
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert ledger.entries() == [] and ledger.verify_chain()[0]
    ledger.append(1, "started", {"sample_ids": [3]})
    assert [e["kind"] for e in ledger.entries()] == ["started"]


def test_a_ledger_cut_short_is_never_extended(served_run):
    (served_run.store.root / "ledger.sqlite").write_bytes(b"")
    with pytest.raises(LedgerError, match="is empty"):
        served_run.ledger.append(3, "started", {})
    ok, detail = served_run.ledger.verify_chain()
    assert not ok and "its anchor records 2 entries" in detail
    with pytest.raises(LedgerError, match=r"ledger: .* is empty \(0 bytes\), but its anchor records 2 entries"):
        Experiment.open(served_run.store.root)
