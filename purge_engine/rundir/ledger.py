"""The forget ledger: append-only, hash-chained, in SQLite, anchored outside the database (section 8).

    <run>/ledger.sqlite
    <run>/ledger.head.json   the anchor: entry count and head hash at the last commit

What each entry kind holds is records.py's; this module stores entries, chains them and checks them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from purge_engine.rundir import records
from purge_engine.rundir.atomic import atomic_write_json
from purge_engine.rundir.files import CheckpointError, read_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL,
    kind TEXT NOT NULL,          -- started | done | verified | full_retrain (records.KINDS)
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


class LedgerError(ValueError):
    """The ledger cannot be read or trusted: empty, corrupted, truncated, or not the chain its anchor names."""


def _entry_hash(prev_hash: str, seq: int, request_id: int, kind: str, time_: str, body: str) -> str:
    text = json.dumps([prev_hash, seq, request_id, kind, time_, body], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _body_text(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


class Ledger:
    """Append-only record of forget requests (records.KINDS), each entry chained to the one before by hash.

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
            return [{"seq": r[0], records.REQUEST_ID: r[1], records.KIND: r[2], "time": r[3],
                     records.BODY: json.loads(r[4]), "prev_hash": r[5], "hash": r[6]} for r in self._rows(request_id)]
        except (json.JSONDecodeError, IndexError, TypeError) as err:
            raise self._fail(f"holds an entry that is not valid ({err})") from None

    def check(self) -> None:
        """Raise LedgerError when the ledger is unreadable or not the chain its anchor names."""
        self._rows(request_id=-1)

    # -- writing ---------------------------------------------------------------------------
    def append(self, request_id: int, kind: str, body: dict) -> dict:
        """Add one entry of a kind records.KINDS names; the anchor follows the commit."""
        text, when = _body_text(body), datetime.now(UTC).isoformat(timespec="seconds")
        records.check_kind(kind)
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
        return {"seq": seq, records.REQUEST_ID: request_id, records.KIND: kind, "time": when, records.BODY: body,
                "prev_hash": prev, "hash": digest}

    # -- what it says ----------------------------------------------------------------------
    def next_request_id(self) -> int:
        return max((e[records.REQUEST_ID] for e in self.entries()), default=0) + 1

    def pending(self) -> list[int]:
        """Requests journaled but never finished: a process died mid-request."""
        return records.pending_ids(self.entries())

    def latest_done(self) -> int | None:
        """The id of the latest request that finished; None before the first."""
        return max(records.done_ids(self.entries()), default=None)

    def verify_chain(self) -> tuple[bool, str]:
        """(valid, sentence): every entry's hash matches its content and the one before, and the
        database holds the prefix its anchor records."""
        prev = GENESIS
        try:
            entries = self.entries()
        except LedgerError as err:
            return False, str(err)
        for e in entries:
            digest = _entry_hash(prev, e["seq"], e[records.REQUEST_ID], e[records.KIND], e["time"],
                                 _body_text(e[records.BODY]))
            if e["prev_hash"] != prev or e["hash"] != digest:
                return False, (f"entry {e['seq']} (request {e[records.REQUEST_ID]}, {e[records.KIND]}) breaks the "
                               "hash chain")
            prev = e["hash"]
        return True, "every entry's hash matches its content and the entry before it"

    def record(self, request_id: int) -> dict:
        """A request's entries merged (records.merge); ValueError naming the known ids for another id."""
        entries = self.entries(request_id)
        if not entries:
            known = sorted({e[records.REQUEST_ID] for e in self.entries()})
            raise ValueError(f"request: got {request_id}, must be one of {known or 'none yet'}")
        return records.merge(request_id, entries)

    def certificate(self, request_id: int) -> dict:
        ok, detail = self.verify_chain()
        return {"certificate": "PURGE Explorer forget request", "caveat": CERTIFICATE_CAVEAT,
                "chain_valid": ok, "chain_detail": detail, **self.record(request_id)}
