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

from purge_engine.checkpoints import CheckpointError, read_sidecar
from purge_engine.constituents import ROLES, Chains, count
from purge_engine.files import atomic_write_json, file_hash, read_json
from purge_engine.plan import METHODS
from purge_engine.soft_labels import outputs_key

MANIFEST_NAME = "manifest.json"
FORMAT = 1
RECORDED = ("key", "param_hash", "file_sha256", "request_id")  # what the manifest keeps of each sidecar


def manifest_path(store) -> Path:
    return store.root / MANIFEST_NAME


def digest_of(data: dict) -> str:
    """sha256 of the manifest's content (every field but `digest`), canonical JSON."""
    body = {k: v for k, v in data.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- the positions a plan asks for ----------------------------------------------------------------
def checkpoint_positions(chains: Chains, roles=tuple(ROLES)):
    """(name, role, constituent, step, key) of every step the plan asks of the given roles."""
    for role in roles:
        for c in range(count(role, chains.plan)):
            for spec in chains.steps(role, c):
                yield f"{role}-{c}/step-{spec.step}", role, c, spec.step, spec.key


def label_positions(chains: Chains, methods=METHODS):
    """(name, (method, student, chunk, slice, teacher), key) of every per-teacher soft-label file."""
    plan, temperature = chains.plan, chains.config.temperature
    for method in methods:
        for k in range(plan.n_students):
            for c in range(plan.n_chunks(k)):
                for t in plan.labelling_teachers(method, k, c):
                    for j in range(plan.student_slices):
                        ids = plan.student_shards[k][c][j]
                        key = outputs_key(chains.teacher_keys[t], ids, temperature)
                        yield f"{method}-{k}/chunk-{c}-slice-{j}-teacher-{t}", (method, k, c, j, t), key


def _current(stem: Path, key: str) -> dict | None:
    """The sidecar's recorded fields when it holds `key` (a current file), else None."""
    try:
        meta = read_sidecar(stem)
    except CheckpointError:
        return None
    if meta is None or meta.get("key") != key:
        return None
    return {field: meta.get(field) for field in RECORDED}


# -- writing ------------------------------------------------------------------------------------------
def build_manifest(store, config, plan) -> dict:
    """The manifest of a run as its files stand: every current file's recorded hashes."""
    chains = Chains(config, plan)
    checkpoints = {}
    for name, role, c, step, key in checkpoint_positions(chains):
        entry = _current(store.checkpoint_stem(role, c, step), key)
        if entry is not None:
            checkpoints[name] = entry
    labels = {}
    for name, position, key in label_positions(chains):
        entry = _current(store.labels_stem(*position), key)
        if entry is not None:
            labels[name] = entry
    data = {"format": FORMAT, "config": config.to_dict(), "fingerprint": config.fingerprint(),
            "plan_sha256": file_hash(store.plan_path), "forgotten": sorted(plan.forgotten),
            "checkpoints": checkpoints, "soft_labels": labels}
    return {**data, "digest": digest_of(data)}


def write_manifest(store, config, plan) -> dict:
    """Record the run's current files in manifest.json (atomically); call under the writer lock. An
    unchanged manifest is left as it is (a training that reused everything changes no byte of the run)."""
    data = build_manifest(store, config, plan)
    path = manifest_path(store)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write_json(path, data)
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
    return {name.split("/")[0].rsplit("-", 1)[0] for name in data.get("checkpoints", {})}
