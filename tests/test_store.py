"""store.py: opening a run directory, the writer lock (one request at a time) and the append-only,
hash-chained forget ledger."""

import sqlite3
import threading

import pytest

from purge_engine.experiment import Experiment
from tests.conftest import copy_of


def test_opening_a_missing_or_foreign_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Experiment.open(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="not a run directory"):
        Experiment.open(tmp_path)


def test_the_ledger_is_append_only_and_its_chain_detects_edits(disjoint_run, tmp_path):
    exp = copy_of(disjoint_run, tmp_path / "run")
    exp.forget([int(exp.plan.teacher_shards[0][0][0])])
    exp.verify()
    ledger = exp.ledger
    assert [e["kind"] for e in ledger.entries()] == ["started", "done", "verified"]
    assert ledger.verify_chain()[0]
    certificate = ledger.certificate(1)
    assert certificate["exact"] is True and "not a cryptographic proof" in certificate["caveat"]
    conn = sqlite3.connect(exp.store.ledger_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE entries SET body = '{}' WHERE seq = 1")
    conn.execute("DROP TRIGGER entries_no_update")  # a determined editor gets past the trigger...
    conn.execute("UPDATE entries SET body = '{\"sample_ids\": [1]}' WHERE seq = 1")
    conn.commit()
    conn.close()
    ok, detail = ledger.verify_chain()  # ...but not past the hash chain
    assert not ok and "entry 1" in detail


def test_a_second_request_waits_for_the_first(disjoint_run, tmp_path):
    exp_a = copy_of(disjoint_run, tmp_path / "run")
    exp_b = Experiment.open(tmp_path / "run")
    first_training = threading.Event()
    release = threading.Event()

    def hold(event):
        if getattr(event, "kind", "") == "training" and not first_training.is_set():
            first_training.set()
            release.wait(timeout=60)

    a = threading.Thread(target=exp_a.forget, args=([int(exp_a.plan.teacher_shards[0][0][0])],),
                         kwargs={"on_event": hold})
    a.start()
    assert first_training.wait(timeout=60)
    b = threading.Thread(target=exp_b.forget, args=([int(exp_b.plan.teacher_shards[7][0][0])],))
    b.start()
    b.join(timeout=1.0)
    assert b.is_alive()  # still waiting for the writer lock
    assert [e["kind"] for e in exp_a.ledger.entries()] == ["started"]
    release.set()
    a.join(timeout=120)
    b.join(timeout=120)
    kinds = [(e["request_id"], e["kind"]) for e in exp_a.ledger.entries()]
    assert kinds == [(1, "started"), (1, "done"), (2, "started"), (2, "done")]
    assert len(Experiment.open(tmp_path / "run").plan.forgotten) == 2
