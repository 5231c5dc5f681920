"""The run directory: where a run's config, plan, checkpoints, soft labels and ledger live (section 8).

    <run>/config.json
    <run>/plan.json
    <run>/checkpoints/<role>-<id>/step-<m>.safetensors + .json
    <run>/soft_labels/<method>-<student_id>/chunk-<l>-slice-<j>-teacher-<i>.safetensors + .json
    <run>/ledger.sqlite
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from purge_engine.config import PurgeConfig
from purge_engine.events import Cancelled
from purge_engine.files import CheckpointError, atomic_write_bytes, atomic_write_json, read_json
from purge_engine.plan import Plan

DEFAULT_RUNS_DIR = Path("runs")
ENVIRONMENT_KEY = "environment"  # in config.json: the executor and worker count, not part of the fingerprint
LOCK_NAME = "writer.lock"
LOCK_TIMEOUT_S = 600.0  # how long train, evaluate, verify and forget wait for another writer by default
LOCK_POLL_S = 0.1
MAX_RUN_NAME = 100
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # ASCII only: no separator, never "." or ".."
# Folders of the runs directory that hold other things than one run: imported datasets, sweeps, the
# Learn page's lesson runs. A run may not take their names (it would train into them, or a reset of a
# lesson could delete it).
RESERVED_RUN_NAMES = ("datasets", "sweeps", "lessons")


class LedgerError(ValueError):
    """The ledger cannot be read or trusted: empty, corrupted, truncated, or not the chain its anchor names."""


class RunBusy(ValueError):
    """Another writer (a forget request, training or a verification) held the run past the wait allowed."""


# -- run names (the dashboard's runs are names under its runs directory) ---------------------------
def check_run_name(name) -> str:
    """A run name: 1 to MAX_RUN_NAME characters of ASCII letters, digits, '.', '_' and '-', starting with
    a letter or digit (so never a path, '..' or a hidden name). ValueError naming run_name otherwise."""
    allowed = (f"must be 1 to {MAX_RUN_NAME} characters of letters, digits, '.', '_' and '-', starting with a "
               "letter or digit")
    if not isinstance(name, str) or not name:
        raise ValueError(f"run_name: got an empty name, {allowed}")
    if len(name) > MAX_RUN_NAME:
        raise ValueError(f"run_name: got {len(name)} characters, {allowed}")
    if not _RUN_NAME.fullmatch(name):
        raise ValueError(f"run_name: got {name[:40]!r}, {allowed}")
    if name.lower() in RESERVED_RUN_NAMES:
        raise ValueError(f"run_name: got {name!r}, which the runs directory keeps for other things "
                         f"({', '.join(RESERVED_RUN_NAMES)}); choose another name")
    return name


def run_dir_under(runs_dir: Path | str, name) -> Path:
    """runs_dir/name for a valid run name, refused (ValueError) when it would resolve anywhere but
    directly under runs_dir (a symlink planted there, say)."""
    check_run_name(name)
    root = Path(runs_dir).resolve()
    if (root / name).resolve().parent != root:
        raise ValueError(f"run_name: {name!r} resolves outside {root}; a run must be a directory directly under it")
    return Path(runs_dir) / name


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

    @property
    def lock_path(self) -> Path:
        """The writer lock's file; absent until the first train or forget request takes the lock."""
        return self.root / LOCK_NAME

    def checkpoint_stem(self, role: str, constituent: int, step: int) -> Path:
        return self.inside("checkpoints", f"{role}-{constituent}") / f"step-{step}"

    def labels_stem(self, method: str, student_id: int, chunk_id: int, slice_id: int, teacher_id: int) -> Path:
        """One teacher's softmax outputs over one student slice, as one method's labels use them."""
        folder = self.inside("soft_labels", f"{method}-{student_id}")
        return folder / f"chunk-{chunk_id}-slice-{slice_id}-teacher-{teacher_id}"

    def inside(self, *folders: str) -> Path:
        """root/folders..., refused (ValueError) when any of those folders is a symbolic link: nothing in a
        run directory is read or written through a link (a linked folder would let a repair write outside
        the run, on the shared storage scale-out recommends above all)."""
        path = self.root
        for folder in folders:
            path = path / folder
            if path.is_symlink():
                raise ValueError(f"run: {path} is a symbolic link; a run directory opens nothing through a link "
                                 "(replace it with the folder itself, or `check --repair` after removing it)")
        return path

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
        """The run's config, complete: a field missing from config.json is refused, never filled with
        today's default (the stored config decided every checkpoint)."""
        try:
            data = read_json(self.config_path, "run config")
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k != ENVIRONMENT_KEY}
            return PurgeConfig.from_dict(data, complete=True)  # refuses a list or null too, with a sentence
        except (CheckpointError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"run: {self.config_path} cannot be read: {err}") from None

    def write_config(self, config: PurgeConfig, environment: dict | None = None) -> None:
        """config.json: the config, plus (outside the fingerprint) how the run was last executed."""
        data = config.to_dict() | ({ENVIRONMENT_KEY: environment} if environment else {})
        atomic_write_bytes(self.config_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def read_environment(self) -> dict:
        """How the run was last trained ({"executor", "workers", ...}); empty before its first training."""
        try:
            return read_json(self.config_path, "run config").get(ENVIRONMENT_KEY, {})
        except (CheckpointError, AttributeError):
            return {}

    def first_checkpoint_path(self) -> str | None:
        """The execution path in the first teacher checkpoint's sidecar (a run recorded before the execution
        record named its path); None when there is none."""
        sidecar = self.checkpoint_stem("teacher", 0, 0).with_suffix(".json")
        try:
            return read_json(sidecar, "checkpoint teacher-0/step-0").get("environment", {}).get("path")
        except (CheckpointError, AttributeError):
            return None

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
_held = threading.local()  # run root -> [depth, shared] of the locks this thread holds


def _holds() -> dict:
    if not hasattr(_held, "runs"):
        _held.runs = {}
    return _held.runs


def holds_writer_lock(store: RunStore) -> bool:
    """True when this thread already holds the run's lock (an inner train inside a forget request)."""
    return str(store.root.resolve()) in _holds()


@contextmanager
def writer_lock(store: RunStore, wait: bool = True, timeout: float | None = None, holder: str = "a writer",
                on_wait: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
                shared: bool = False):
    """Hold the run's writer lock (an flock on <run>/writer.lock): a forget request, training or a
    verification waits for the one before it. Re-entrant within a thread. With wait=False, yields
    False at once when another writer holds it; otherwise waits (on_wait gets one sentence saying
    for what) up to `timeout` seconds (None: for ever) and then raises RunBusy naming what holds it.
    shared: a reader (evaluate) that many may hold at once, but never beside a writer. `holder` is
    written into the lock file while it is held (emptied after), so a waiter can say what it waits for."""
    key, held = str(store.root.resolve()), _holds()
    if key in held:
        if held[key][1] and not shared:
            raise RuntimeError(f"run: {store.root}: a writer lock was asked for while holding a reader's")
        held[key][0] += 1
        try:
            yield True
        finally:
            held[key][0] -= 1
        return
    store.root.mkdir(parents=True, exist_ok=True)
    with _open_lock(store.lock_path) as handle:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not _acquire(handle, mode, store, wait, timeout, on_wait, should_stop):
            yield False
            return
        held[key] = [1, shared]
        try:
            if not shared:
                handle.seek(0)
                handle.truncate()
                handle.write(holder)
                handle.flush()
            yield True
        finally:
            held.pop(key, None)
            if not shared:
                handle.seek(0)
                handle.truncate()  # idle, the lock file is empty again
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_lock(path: Path):
    """The lock file opened for reading and writing, created when absent, never through a symbolic link
    (the holder's name written into it would truncate the link's target)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"run: {path} is a symbolic link; a run directory opens nothing through a link "
                             "(remove it: the next writer makes the lock file again)") from None
        raise
    return os.fdopen(fd, "r+")


def _try_lock(handle, mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _acquire(handle, mode, store, wait, timeout, on_wait, should_stop) -> bool:
    if _try_lock(handle, mode):
        return True
    if not wait:
        return False
    limit = "" if timeout is None else f" (up to {timeout:g} s)"
    (on_wait or (lambda _: None))(f"run: {busy_text(store)}; waiting for it to finish{limit}")
    deadline = None if timeout is None else time.monotonic() + timeout
    while not _try_lock(handle, mode):
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled while waiting: {busy_text(store)}")
        if deadline is not None and time.monotonic() >= deadline:
            raise RunBusy(f"run: {busy_text(store)} in {store.root} (waited {timeout:g} s for it); "
                          "try again when it is done")
        time.sleep(LOCK_POLL_S)
    return True


def busy_text(store: RunStore) -> str:
    """What holds the run's lock, as a sentence's subject: "request 3 is in progress" for a forget
    request (the ledger's journaled, unfinished one), else what the holder wrote ("training ...")."""
    try:
        pending = Ledger(store.ledger_path).pending()
    except LedgerError:
        pending = []
    if pending:
        return f"request {pending[-1]} is in progress"
    try:
        what = "" if store.lock_path.is_symlink() else store.lock_path.read_text(errors="replace").strip()[:200]
    except OSError:
        what = ""
    return f"{what or 'another writer'} is in progress"


def run_is_busy(store: RunStore) -> str | None:
    """busy_text when another thread or process holds the run's lock now; None when it is free
    (the dashboard asks, to show a request another process serves as in progress)."""
    path = store.lock_path
    if path.is_symlink() or not path.is_file() or holds_writer_lock(store):
        return None  # a linked lock file is never opened: the next writer refuses it with a sentence
    with _open_lock(path) as handle:
        if _try_lock(handle, fcntl.LOCK_SH):
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    return busy_text(store)


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
    `done` (scope, costs, hashes after), `verified` and `full_retrain`, each chained to the one before by hash.

    The chain is anchored outside the database: at every commit the entry count and the head hash go
    to <ledger>.head.json (atomically), and every read checks that the database still holds that
    prefix of the chain, so a ledger emptied, replaced or cut short is detected. The anchor may lag
    the database by the entries of a crash between commit and anchor write, never lead it. Every
    sqlite failure becomes a LedgerError, one sentence."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def anchor_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".head.json")

    # -- reading ---------------------------------------------------------------------------
    def _fail(self, what: str) -> LedgerError:
        return LedgerError(f"ledger: {self.path} {what}; its history cannot be trusted (keep a copy of the run "
                           "directory before changing anything)")

    def _anchor(self) -> dict | None:
        if not self.anchor_path.exists():
            return None
        try:
            anchor = read_json(self.anchor_path, "ledger anchor")
            count, head = int(anchor["count"]), str(anchor["head"])
        except (CheckpointError, KeyError, TypeError, ValueError) as err:
            raise LedgerError(f"ledger: its anchor {self.anchor_path} cannot be read ({err})") from None
        return {"count": count, "head": head}

    def _rows(self, request_id: int | None = None) -> list[tuple]:
        """The rows, checked against the anchor first; [] for a run that has no ledger yet."""
        anchor = self._anchor()
        if not self.path.exists():
            if anchor and anchor["count"]:
                raise self._fail(f"is missing, but its anchor records {anchor['count']} entries")
            return []
        if self.path.stat().st_size == 0:  # sqlite creates the file before its first commit
            if anchor and anchor["count"]:
                raise self._fail(f"is empty (0 bytes), but its anchor records {anchor['count']} entries")
            return []
        query, args = "SELECT * FROM entries ORDER BY seq", ()
        if request_id is not None:
            query, args = "SELECT * FROM entries WHERE request_id = ? ORDER BY seq", (request_id,)
        try:
            with closing(sqlite3.connect(self.path, timeout=60)) as conn:  # read-write: it may roll back a crash
                count, last = conn.execute("SELECT count(*), max(seq) FROM entries").fetchone()
                head = conn.execute("SELECT hash FROM entries WHERE seq = ?", ((anchor or {}).get("count", 0),))
                self._check_anchor(anchor, count, last or 0, (head.fetchone() or (None,))[0])
                return conn.execute(query, args).fetchall()
        except sqlite3.Error as err:
            raise self._fail(f"cannot be read as a ledger (sqlite: {err})") from None

    def _check_anchor(self, anchor: dict | None, count: int, last: int, head_at_anchor: str | None) -> None:
        if count != last:
            raise self._fail(f"holds {count} entries numbered up to {last}: entries were deleted")
        if anchor is None:
            return  # a ledger from before anchoring: the next commit writes its anchor
        if count < anchor["count"]:
            raise self._fail(f"holds {count} entries, but its anchor {self.anchor_path.name} records "
                             f"{anchor['count']}: entries were removed")
        if anchor["count"] and head_at_anchor != anchor["head"]:
            raise self._fail(f"entry {anchor['count']} is not the one its anchor {self.anchor_path.name} records: "
                             "the ledger was replaced or rewritten")

    def entries(self, request_id: int | None = None) -> list[dict]:
        try:
            return [{"seq": r[0], "request_id": r[1], "kind": r[2], "time": r[3], "body": json.loads(r[4]),
                     "prev_hash": r[5], "hash": r[6]} for r in self._rows(request_id)]
        except (json.JSONDecodeError, IndexError, TypeError) as err:
            raise self._fail(f"holds an entry that is not valid ({err})") from None

    def check(self) -> None:
        """Raise LedgerError when the ledger is unreadable or not the chain its anchor names."""
        self._rows(request_id=-1)

    # -- writing ---------------------------------------------------------------------------
    def append(self, request_id: int, kind: str, body: dict) -> dict:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        when = datetime.now(UTC).isoformat(timespec="seconds")
        self.check()  # never extend (and re-anchor) a ledger that has lost entries
        try:
            with closing(sqlite3.connect(self.path, timeout=60)) as conn, conn:
                conn.executescript(_SCHEMA)
                conn.execute("BEGIN IMMEDIATE")
                last = conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = _entry_hash(prev, seq, request_id, kind, when, text)
                conn.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (seq, request_id, kind, when, text, prev, digest))
        except sqlite3.Error as err:
            raise LedgerError(f"ledger: {self.path} cannot be written (sqlite: {err}); the request's entry "
                              f"{kind!r} was not recorded") from None
        atomic_write_json(self.anchor_path, {"count": seq, "head": digest})  # after the commit: may lag, never lead
        return {"seq": seq, "request_id": request_id, "kind": kind, "time": when, "body": body,
                "prev_hash": prev, "hash": digest}

    def next_request_id(self) -> int:
        return max((e["request_id"] for e in self.entries()), default=0) + 1

    def pending(self) -> list[int]:
        """Requests journaled but never finished: a process died mid-request."""
        kinds: dict[int, set[str]] = {}
        for entry in self.entries():
            kinds.setdefault(entry["request_id"], set()).add(entry["kind"])
        return sorted(r for r, k in kinds.items() if "started" in k and "done" not in k)

    def verify_chain(self) -> tuple[bool, str]:
        """(valid, sentence): every entry's hash matches its content and the one before, and the
        database holds the prefix its anchor records."""
        prev = GENESIS
        try:
            entries = self.entries()
        except LedgerError as err:
            return False, str(err)
        for e in entries:
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
