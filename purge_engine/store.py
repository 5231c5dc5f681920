"""The run directory: where a run's config, plan, checkpoints, soft labels and ledger live (section 8).

    <run>/config.json
    <run>/plan.json
    <run>/checkpoints/<role>-<id>/step-<m>.safetensors + .json
    <run>/soft_labels/<method>-<student_id>/chunk-<l>-slice-<j>-teacher-<i>.safetensors + .json
    <run>/ledger.sqlite
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from purge_engine.config import PurgeConfig
from purge_engine.files import CheckpointError, atomic_write_bytes, read_json
from purge_engine.plan import Plan

DEFAULT_RUNS_DIR = Path("runs")
ENVIRONMENT_KEY = "environment"  # in config.json: the executor and worker count, not part of the fingerprint


class RunStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    def checkpoint_stem(self, role: str, constituent: int, step: int) -> Path:
        return self.root / "checkpoints" / f"{role}-{constituent}" / f"step-{step}"

    def labels_stem(self, method: str, student_id: int, chunk_id: int, slice_id: int, teacher_id: int) -> Path:
        """One teacher's softmax outputs over one student slice, as one method's labels use them."""
        return (self.root / "soft_labels" / f"{method}-{student_id}"
                / f"chunk-{chunk_id}-slice-{slice_id}-teacher-{teacher_id}")

    # -- what it holds ----------------------------------------------------------------------
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def check_is_run(self) -> None:
        if not self.root.exists():
            raise ValueError(f"run: {self.root} does not exist; create it with `python -m purge_engine train "
                             f"--run {self.root}`")
        if not self.is_run():
            raise ValueError(f"run: {self.root} is not a run directory (it has no config.json)")

    def read_config(self) -> PurgeConfig:
        try:
            data = read_json(self.config_path, "run config")
            return PurgeConfig.from_dict({k: v for k, v in data.items() if k != ENVIRONMENT_KEY})
        except (CheckpointError, TypeError, AttributeError) as err:
            raise ValueError(f"run: {self.config_path} cannot be read: {err}") from None

    def write_config(self, config: PurgeConfig, environment: dict | None = None) -> None:
        """config.json: the config, plus (outside the fingerprint) how the run was last executed."""
        data = config.to_dict() | ({ENVIRONMENT_KEY: environment} if environment else {})
        atomic_write_bytes(self.config_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def read_environment(self) -> dict:
        """How the run was last trained ({"executor", "workers", ...}); empty before its first training."""
        try:
            return read_json(self.config_path, "run config").get(ENVIRONMENT_KEY, {})
        except CheckpointError:
            return {}

    def record_execution(self, config: PurgeConfig, execution: dict) -> None:
        if self.read_environment() != execution:
            self.write_config(config, execution)

    def read_plan(self) -> Plan:
        try:
            return Plan.from_dict(read_json(self.plan_path, "run plan"))
        except (CheckpointError, KeyError, TypeError) as err:
            raise ValueError(f"run: {self.plan_path} cannot be read: {err}") from None

    def write_plan(self, plan: Plan) -> None:
        atomic_write_bytes(self.plan_path, plan.to_json().encode())


def list_runs(runs_dir: Path | str = DEFAULT_RUNS_DIR) -> list[Path]:
    """Run directories under runs_dir, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if RunStore(p).is_run()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


# -- one writer per run --------------------------------------------------------------------
@contextmanager
def writer_lock(store: RunStore, wait: bool = True):
    """Hold the run's writer lock (an flock on <run>/writer.lock): a second forget request or
    training job on the same run waits for the first. With wait=False, yields False at once
    when another writer holds it."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / "writer.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the forget ledger ----------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL,
    kind TEXT NOT NULL,          -- started | done | verified | full_retrain
    time TEXT NOT NULL,          -- UTC, ISO 8601
    body TEXT NOT NULL,          -- JSON
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""
GENESIS = "0" * 64
CERTIFICATE_CAVEAT = ("This record certifies which algorithm ran on which samples and what it changed, as "
                      "written by the engine that ran it. It is not a cryptographic proof: anyone with write "
                      "access to the run directory could have produced it. The hash chain shows only that "
                      "entries were not edited after later ones were written.")


def _entry_hash(prev_hash: str, seq: int, request_id: int, kind: str, time_: str, body: str) -> str:
    text = json.dumps([prev_hash, seq, request_id, kind, time_, body], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Ledger:
    """Append-only record of forget requests: entries `started` (journaled before any work),
    `done` (scope, costs, hashes after), `verified` and `full_retrain`, each chained to the one before by hash."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60)
        conn.executescript(_SCHEMA)
        return conn

    def append(self, request_id: int, kind: str, body: dict) -> dict:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        when = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as conn, conn:
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            digest = _entry_hash(prev, seq, request_id, kind, when, text)
            conn.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (seq, request_id, kind, when, text, prev, digest))
        return {"seq": seq, "request_id": request_id, "kind": kind, "time": when, "body": body,
                "prev_hash": prev, "hash": digest}

    def entries(self, request_id: int | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        query, args = "SELECT * FROM entries ORDER BY seq", ()
        if request_id is not None:
            query, args = "SELECT * FROM entries WHERE request_id = ? ORDER BY seq", (request_id,)
        with closing(self._connect()) as conn:
            rows = conn.execute(query, args).fetchall()
        return [{"seq": r[0], "request_id": r[1], "kind": r[2], "time": r[3], "body": json.loads(r[4]),
                 "prev_hash": r[5], "hash": r[6]} for r in rows]

    def next_request_id(self) -> int:
        return max((e["request_id"] for e in self.entries()), default=0) + 1

    def pending(self) -> list[int]:
        """Requests journaled but never finished: a process died mid-request."""
        kinds: dict[int, set[str]] = {}
        for entry in self.entries():
            kinds.setdefault(entry["request_id"], set()).add(entry["kind"])
        return sorted(r for r, k in kinds.items() if "started" in k and "done" not in k)

    def verify_chain(self) -> tuple[bool, str]:
        prev = GENESIS
        for e in self.entries():
            body = json.dumps(e["body"], sort_keys=True, separators=(",", ":"))
            if e["prev_hash"] != prev or e["hash"] != _entry_hash(prev, e["seq"], e["request_id"], e["kind"],
                                                                  e["time"], body):
                return False, f"entry {e['seq']} (request {e['request_id']}, {e['kind']}) breaks the hash chain"
            prev = e["hash"]
        return True, "every entry's hash matches its content and the entry before it"

    def record(self, request_id: int) -> dict:
        """A request's entries merged: started, then done, then the latest verification."""
        entries = self.entries(request_id)
        if not entries:
            known = sorted({e["request_id"] for e in self.entries()})
            raise ValueError(f"request: got {request_id}, must be one of {known or 'none yet'}")
        merged: dict = {"request_id": request_id, "status": "running", "entries": entries}
        for entry in entries:
            merged.update(entry["body"])
            merged[f"{entry['kind']}_at"] = entry["time"]
            if entry["kind"] == "done":
                merged["status"] = "done"
        return merged

    def certificate(self, request_id: int) -> dict:
        ok, detail = self.verify_chain()
        return {"certificate": "PURGE Explorer forget request", "caveat": CERTIFICATE_CAVEAT,
                "chain_valid": ok, "chain_detail": detail, **self.record(request_id)}
