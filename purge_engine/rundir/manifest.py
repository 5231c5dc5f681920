"""The run manifest: what every current file held at the last commit point (issue 17, item 6).

    <run>/manifest.json

Written atomically, under the writer lock, at the end of every training (and so at the end of
every forget request, whose retraining is a training), it records for each step of each constituent
the plan asks for, and each per-teacher soft-label file, the content key, the parameter hash and
the file's sha256, as they were when written. A file damaged later is judged against this record,
which the damage did not touch: a sidecar can be deleted or edited together with its checkpoint,
the manifest is a third file. It also keeps the config, the plan's sha256 and the forgotten ids, so
plan.json and config.json can be rebuilt and proved (check.py). A `digest` over the rest detects a
manifest edited by hand.

Why a manifest and not the ledger's hashes: the ledger records only each constituent's final
parameter hash, per forget request, and nothing for the first training; a rollback restores from an
intermediate step, and the soft-label cache is keyed per teacher and slice, so every step and every
label file needs its own record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from purge_engine.constituents import ROLES, Chains
from purge_engine.plan import METHODS
from purge_engine.rundir import sidecar
from purge_engine.rundir.atomic import atomic_write_bytes, json_text
from purge_engine.rundir.checkpoints import CheckpointError, read_sidecar
from purge_engine.rundir.files import file_hash, read_json
from purge_engine.rundir.names import (
    CHECKPOINTS,
    MANIFEST_NAME,
    SOFT_LABELS,
    CheckpointName,
    checkpoint_walk,
    label_walk,
)
from purge_engine.soft_labels import outputs_key

FORMAT = 1


def manifest_path(store) -> Path:
    return store.root / MANIFEST_NAME


def digest_of(data: dict) -> str:
    """sha256 of the manifest's content (every field but `digest`), canonical JSON."""
    body = {k: v for k, v in data.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- the files a plan asks for, with the key each must hold ----------------------------------------
def wanted_files(chains: Chains, roles=tuple(ROLES), methods=METHODS):
    """(name, key) of every checkpoint of the given roles, then every per-teacher soft-label file of the
    given methods (names.checkpoint_walk, names.label_walk)."""
    for name, spec in checkpoint_walk(chains, roles):
        yield name, spec.key
    temperature = chains.config.temperature
    for label in label_walk(chains.plan, methods):
        yield label, outputs_key(chains.teacher_keys[label.teacher], label.ids(chains.plan), temperature)


def _current(stem: Path, key: str) -> dict | None:
    """The sidecar's recorded fields when it holds `key` (a current file), else None."""
    try:
        meta = read_sidecar(stem)
    except CheckpointError:
        return None
    if meta is None or meta.get(sidecar.KEY) != key:
        return None
    return {field: meta.get(field) for field in sidecar.RECORDED}


# -- writing ------------------------------------------------------------------------------------------
def build_manifest(store, config, plan) -> dict:
    """The manifest of a run as its files stand: every current file's recorded hashes."""
    records: dict[str, dict] = {CHECKPOINTS: {}, SOFT_LABELS: {}}
    for name, key in wanted_files(Chains(config, plan)):
        entry = _current(store.stem(name), key)
        if entry is not None:
            records[name.AREA][str(name)] = entry
    data = {"format": FORMAT, "config": config.to_dict(), "fingerprint": config.fingerprint(),
            "plan_sha256": file_hash(store.plan_path), "forgotten": sorted(plan.forgotten), **records}
    return {**data, "digest": digest_of(data)}


def write_manifest(store, config, plan) -> dict:
    """Record the run's current files in manifest.json (atomically); call under the writer lock. An
    unchanged manifest is left as it is (a training that reused everything changes no byte of the run)."""
    data = build_manifest(store, config, plan)
    path, text = manifest_path(store), json_text(data)
    if not path.is_file() or path.read_text() != text:
        atomic_write_bytes(path, text.encode())
    return data


def read_manifest(store) -> dict | None:
    """The manifest, or None when there is none; CheckpointError when it is unreadable or edited."""
    path = manifest_path(store)
    if not path.exists():
        return None
    data = read_json(path, "run manifest")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"run manifest: {path} is not a format-{FORMAT} manifest")
    if data.get("digest") != digest_of(data):
        raise CheckpointError(f"run manifest: {path} was changed after it was written (its digest does not match)")
    return data


def recorded_roles(store) -> set[str]:
    """Roles the last commit recorded checkpoints of (empty with no readable manifest): a role recorded
    there but not current now was damaged, not left untrained."""
    try:
        data = read_manifest(store) or {}
    except CheckpointError:
        return set()
    return {CheckpointName.parse(name).role for name in data.get(CHECKPOINTS, {})}
