"""What the forget ledger's entries hold: one record schema for every entry kind (DESIGN section 8).

    started       journaled before any work: SAMPLE_IDS, METHODS, SCOPE, SCORE, PREDICTED, HASHES_BEFORE,
                  EVIDENCE_TARGETS, ... (forget.serve)
    done          after the retraining: cost, retrained, reused, HASHES_AFTER, CONTRAST, ... (forget.execute)
    verified      a verification's verdict: EXACT, ... (verify.verify_latest)
    full_retrain  the reference cost: {FULL_RETRAIN: ...} (Experiment.forget with full_retrain)

A request's record merges its entries' bodies in order (`merge`): later keys win, "<kind>_at" gives
each entry's time and STATUS says whether it is done. The functions below read entries (Ledger.entries)
so that no module filters them by bare strings.
"""

from __future__ import annotations

STARTED, DONE, VERIFIED, FULL_RETRAIN = "started", "done", "verified", "full_retrain"
KINDS = (STARTED, DONE, VERIFIED, FULL_RETRAIN)

# body keys read back by other code than the one that writes them
SAMPLE_IDS = "sample_ids"
METHODS = "methods"
SCOPE = "scope"
SCORE = "score"
PREDICTED = "predicted"
HASHES_BEFORE = "hashes_before"  # ConstituentName -> parameter hash of its final checkpoint
HASHES_AFTER = "hashes_after"
EVIDENCE_TARGETS = "evidence_targets"
CONTRAST = "contrast"
EXACT = "exact"
# an entry's columns, and the merged record's own keys
REQUEST_ID = "request_id"
KIND = "kind"
BODY = "body"
STATUS = "status"  # RUNNING or DONE
RUNNING = "running"


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"ledger: entry kind {kind!r}, must be one of {', '.join(KINDS)}")
    return kind


def of_kind(entries: list[dict], kind: str) -> list[dict]:
    return [e for e in entries if e[KIND] == check_kind(kind)]


def started_bodies(entries: list[dict]) -> dict[int, dict]:
    """request id -> the body of its `started` entry."""
    return {e[REQUEST_ID]: e[BODY] for e in of_kind(entries, STARTED)}


def done_ids(entries: list[dict]) -> list[int]:
    """Ids of the requests that finished, in ledger order."""
    return [e[REQUEST_ID] for e in of_kind(entries, DONE)]


def asked_ids(entries: list[dict], up_to: int | None = None, requests=None) -> set[int]:
    """Every sample id the requests asked to forget (those numbered 1..up_to, or those in `requests`)."""
    return {int(i) for r, body in started_bodies(entries).items()
            if (up_to is None or r <= up_to) and (requests is None or r in requests)
            for i in body.get(SAMPLE_IDS, [])}


def pending_ids(entries: list[dict]) -> list[int]:
    """Requests journaled but never finished: a process died mid-request."""
    kinds: dict[int, set[str]] = {}
    for entry in entries:
        kinds.setdefault(entry[REQUEST_ID], set()).add(entry[KIND])
    return sorted(r for r, k in kinds.items() if STARTED in k and DONE not in k)


def merge(request_id: int, entries: list[dict]) -> dict:
    """A request's entries merged: started, then done, then the latest verification."""
    merged: dict = {REQUEST_ID: request_id, STATUS: RUNNING, "entries": entries}
    for entry in entries:
        merged.update(entry[BODY])
        merged[f"{entry[KIND]}_at"] = entry["time"]
        if entry[KIND] == DONE:
            merged[STATUS] = DONE
    return merged
