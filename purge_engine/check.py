"""Check a run directory against its manifest, and heal it with proof (issue 17, item 6).

    report = check_run("runs/demo")                # what is missing, corrupted or inconsistent
    report = check_run("runs/demo", repair=True)   # rebuild exactly that, then prove it

A file is judged against manifest.json (manifest.py), written at the last commit point, never
against its own sidecar alone: a checkpoint is damaged when its sidecar or tensors file is missing,
its bytes no longer hash to the recorded sha256 (corrupted or truncated; "unreadable" when
safetensors cannot parse it either), or its sidecar names another key or other hashes than the
manifest. Repair, under the writer lock, uses the train machinery itself: the content keys say what
each step must be, so step m of a constituent is rebuilt by restoring step m-1 and training step m
(then every later step of that constituent, which was trained from it), one step at a time with the
request id the manifest recorded. A rebuilt teacher is proved bitwise equal to the recorded one, so
its soft labels stay valid and no student retrains for it; a damaged soft-label file is recomputed
from its teacher; a student retrains only when one of its own steps was damaged. The proof: every
rebuilt file's parameter hash equals the hash the manifest recorded before the damage.

plan.json is rebuilt from the config and the forgotten ids the manifest records (make_plan, then
Plan.without: placement is a pure function of config and ids), config.json from the manifest's
config; each is proved by its sha256 or fingerprint. Temp files a crashed atomic write left
(`.<name>.<random>.tmp`, files.py) and a verification's scratch run are removed. A ledger that
fails its own check (store.Ledger) cannot be rebuilt: its history exists nowhere else.

The outputs cache (outputs.py) is not recorded in the manifest, but evaluate reads numbers back from
it, so each of its files is judged against the hash its own metadata records: one that cannot be read
or no longer hashes to it is damage, and repair removes it; the next evaluation recomputes it from its
checkpoint (proved above), which is its proof.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from purge_engine.canaries import load_run_data
from purge_engine.chains import Bench, ChainTask
from purge_engine.checkpoints import SIDECAR_SUFFIX, TENSORS_SUFFIX, CheckpointError, read_sidecar
from purge_engine.config import PurgeConfig
from purge_engine.constituents import ROLES, Chains, count
from purge_engine.events import ignore
from purge_engine.execution import choose
from purge_engine.experiment import Experiment
from purge_engine.files import file_hash
from purge_engine.leftovers import clean_leftovers, leftovers, remove_paths  # noqa: F401 (clean_leftovers re-exported)
from purge_engine.manifest import (
    MANIFEST_NAME,
    build_manifest,
    checkpoint_positions,
    label_positions,
    read_manifest,
    write_manifest,
)
from purge_engine.outputs import OUTPUTS_DIR, entry_problem
from purge_engine.run import resolve_device
from purge_engine.store import LOCK_TIMEOUT_S, Ledger, LedgerError, RunStore, writer_lock

LEDGER_NAME = "ledger.sqlite"  # verify.scratch_dir: a reference run, removed when a verification ends


@dataclass
class Damage:
    path: str  # relative to the run directory
    problem: str  # one sentence
    kind: str  # checkpoint | soft_labels | outputs | plan | config | manifest | ledger | pending | temp | rollback
    name: str = ""  # the manifest's name of a checkpoint or soft-label file
    repairable: bool = True

    def public(self) -> dict:
        return {"path": self.path, "problem": self.problem}


# -- leftovers of a crash ---------------------------------------------------------------------------
# -- inspection -------------------------------------------------------------------------------------
def _rel(store: RunStore, path: Path) -> str:
    return str(path.relative_to(store.root))


def _file_problems(store: RunStore, stem: Path, recorded: dict, kind: str, name: str) -> list[Damage]:
    """What is wrong with one checkpoint or soft-label file against its manifest record."""
    sidecar, tensors, found = stem.with_suffix(SIDECAR_SUFFIX), stem.with_suffix(TENSORS_SUFFIX), []

    def damage(path: Path, problem: str) -> None:
        found.append(Damage(_rel(store, path), problem, kind, name))

    try:
        meta = read_sidecar(stem)
    except CheckpointError as err:
        meta = None
        damage(sidecar, f"sidecar unreadable: {err}")
    else:
        if meta is None:
            damage(sidecar, "sidecar missing")
        elif meta.get("key") != recorded["key"]:
            damage(sidecar, f"sidecar key is {meta.get('key')!r}, the chain's key is {recorded['key']!r}")
        elif (meta.get("param_hash"), meta.get("file_sha256")) != (recorded["param_hash"], recorded["file_sha256"]):
            damage(sidecar, "sidecar records other hashes than the manifest")
    if not tensors.exists():
        damage(tensors, "tensors file missing")
    elif file_hash(tensors) != recorded["file_sha256"]:
        damage(tensors, "corrupted: its sha256 differs from the one recorded" + _unreadable(tensors))
    return found


def _unreadable(path: Path) -> str:
    try:
        load_file(str(path))
        return ""
    except (SafetensorError, OSError, ValueError) as err:
        return f", and it cannot be read as safetensors ({str(err)[:80]})"


@dataclass
class Inspection:
    store: RunStore
    damage: list[Damage]
    manifest: dict | None  # the recorded state (None: nothing recorded outside the files)
    config: PurgeConfig | None
    pending: list[int]
    notes: list[str]


def _read_config(store: RunStore, manifest: dict | None, damage: list[Damage]) -> PurgeConfig | None:
    try:
        config = store.read_config()
    except ValueError as err:
        recorded = manifest is not None and "config" in manifest
        damage.append(Damage("config.json", f"{err}" + ("" if recorded else "; no manifest records the config"),
                             "config", repairable=recorded))
        return PurgeConfig.from_dict(manifest["config"]) if recorded else None
    if manifest is not None and config.fingerprint() != manifest["fingerprint"]:
        damage.append(Damage("config.json", "holds another config than the one its checkpoints were trained "
                             "with (its fingerprint differs from the manifest's)", "config"))
        return PurgeConfig.from_dict(manifest["config"])
    return config


def _read_plan(store: RunStore, manifest: dict | None, pending: list[int], damage: list[Damage]):
    rebuildable = manifest is not None
    how = "" if rebuildable else "; no manifest records the forgotten ids it must be rebuilt from"
    try:
        plan = store.read_plan()
    except ValueError as err:
        damage.append(Damage("plan.json", f"{err}{how}", "plan", repairable=rebuildable))
        return None
    if manifest is not None and not pending and file_hash(store.plan_path) != manifest["plan_sha256"]:
        damage.append(Damage("plan.json", "its sha256 differs from the one recorded at the last commit", "plan"))
        return None
    return plan


def _read_ledger(store: RunStore, damage: list[Damage]) -> tuple[list[int], list[dict]]:
    """(pending request ids, every entry); ([], []) with the ledger's failure as damage."""
    ledger = Ledger(store.ledger_path)
    try:
        pending, entries = ledger.pending(), ledger.entries()
    except LedgerError as err:
        damage.append(Damage(_rel(store, ledger.path), f"{err}; a ledger cannot be rebuilt (its history exists "
                             "nowhere else)", "ledger", repairable=False))
        return [], []
    if pending:
        damage.append(Damage(_rel(store, ledger.path), f"request {pending[-1]} was journaled but not finished (a "
                             "process died serving it); opening the run finishes it, --repair does so last",
                             "pending"))
    return pending, entries


def _ledger_damage(manifest: dict, config: PurgeConfig | None, plan, entries: list[dict],
                   pending: list[int]) -> list[Damage]:
    """The manifest against the ledger, whose chain is anchored outside the database (store.Ledger):
    a manifest is self-consistent by its digest, but a manifest, plan and checkpoints copied back from
    before a request are self-consistent too, and would hold the request's samples again. So every
    sample a finished request forgot must be forgotten in the manifest, and, with no request pending,
    each constituent's final parameter hash must be the one the newest finished request recorded."""
    done = {e["request_id"] for e in entries if e["kind"] == "done"}
    started = {e["request_id"]: e["body"] for e in entries if e["kind"] == "started"}
    forgotten_by_requests = {i for r in done for i in started.get(r, {}).get("sample_ids", [])}
    back = sorted(forgotten_by_requests - set(manifest["forgotten"]))
    found = []
    if back:
        found.append(Damage(MANIFEST_NAME, f"records {len(back)} samples as not forgotten that the ledger's finished "
                            f"requests forgot (e.g. #{back[0]}): the run's files were rolled back to before a request, "
                            "so its samples may be in the models again; serve the requests again on a fresh run",
                            "rollback", repairable=False))
    asked = {i for body in started.values() for i in body.get("sample_ids", [])}
    unexplained = sorted(set(manifest["forgotten"]) - asked)
    if unexplained:
        found.append(Damage(LEDGER_NAME, f"names no request for {len(unexplained)} samples the manifest records as "
                            f"forgotten (e.g. #{unexplained[0]}): the ledger was removed, emptied or replaced, and "
                            "with it the history of those requests (it exists nowhere else)", "ledger",
                            repairable=False))
    if pending or not done or config is None or plan is None:
        return found
    newest = max((e for e in entries if e["kind"] == "done"), key=lambda e: e["seq"])
    chains = Chains(config, plan)
    for position, recorded in sorted(newest["body"].get("hashes_after", {}).items()):
        role, c = position.rsplit("-", 1)
        if recorded is None or role not in ROLES or int(c) >= count(role, plan):
            continue
        name = f"{role}-{c}/step-{chains.steps(role, int(c))[-1].step}"
        held = manifest["checkpoints"].get(name, {}).get("param_hash")
        if held != recorded:
            found.append(Damage(MANIFEST_NAME, f"records {name} with another parameter hash than the ledger's request "
                                f"{newest['request_id']} ({str(held)[:12]} against {recorded[:12]}): the manifest "
                                "is not the one that request's commit wrote", "rollback", name, repairable=False))
    return found


def _read_manifest(store: RunStore, damage: list[Damage]) -> dict | None:
    try:
        return read_manifest(store)
    except CheckpointError as err:
        damage.append(Damage(MANIFEST_NAME, str(err), "manifest"))
        return None


def inspect(store: RunStore) -> Inspection:
    """Every missing, corrupted or inconsistent file of a run, judged against its manifest."""
    damage, notes = [], []
    damage += [Damage(_rel(store, p), "left behind by an interrupted write", "temp") for p in leftovers(store)]
    manifest = _read_manifest(store, damage)
    pending, entries = _read_ledger(store, damage)
    config = _read_config(store, manifest, damage)
    plan = _read_plan(store, manifest, pending, damage) if config is not None else None
    if manifest is not None:
        damage += _ledger_damage(manifest, config, plan, entries, pending)
    if manifest is None and config is not None and plan is not None and not any(d.kind == "manifest"
                                                                                 for d in damage):
        manifest = _unrecorded(store, config, plan, damage, notes)
    if manifest is not None:
        damage += _files_damage(store, manifest, config, plan, pending)
    damage += _outputs_damage(store)
    return Inspection(store, damage, manifest, config, pending, notes)


def _unrecorded(store, config, plan, damage, notes) -> dict | None:
    """No manifest: a run that never finished training has nothing to check; a trained one lost it."""
    current = build_manifest(store, config, plan)
    if not current["checkpoints"]:
        notes.append("the run has not finished a training yet: nothing is recorded to check against")
        return None
    damage.append(Damage(MANIFEST_NAME, "missing: the files can be checked only against their own sidecars",
                         "manifest"))
    return None


def _files_damage(store, manifest, config, plan, pending) -> list[Damage]:
    """Each recorded file against its record. While a request is pending, positions whose key the new
    plan changes are the request's to rewrite and are left out."""
    chains = Chains(config, plan) if plan is not None else None
    wanted = {name: key for name, *_, key in checkpoint_positions(chains)} if chains else {}
    wanted_labels = {name: key for name, _, key in label_positions(chains)} if chains else {}
    found = []
    for kind, records, now, folder in (("checkpoint", manifest["checkpoints"], wanted, "checkpoints"),
                                       ("soft_labels", manifest["soft_labels"], wanted_labels, "soft_labels")):
        for name, recorded in sorted(records.items()):
            if chains is not None and now.get(name) != recorded["key"]:
                if pending:
                    continue
                found.append(Damage(f"{folder}/{name}{SIDECAR_SUFFIX}", "plan.json asks for another key here than "
                                    "the one recorded at the last commit", kind, name, repairable=False))
                continue
            constituent, file = name.split("/", 1)
            try:
                stem = store.inside(folder, constituent) / file
            except ValueError as err:  # a linked folder: never read, never repaired through
                found.append(Damage(f"{folder}/{constituent}", str(err), kind, name, repairable=False))
                continue
            found += _file_problems(store, stem, recorded, kind, name)
    return found


def _outputs_damage(store: RunStore) -> list[Damage]:
    """Outputs-cache files evaluate would not trust (outputs.entry_problem). A linked cache folder is
    refused instead, as a linked checkpoint folder is: repair never deletes through a link."""
    root = store.root / OUTPUTS_DIR
    folders = [root] if root.is_symlink() else sorted(root.glob("*"))
    linked = [Damage(_rel(store, f), f"run: {f} is a symbolic link; a run directory opens nothing through a link "
                     "(replace it with the folder itself, or remove it: it is a cache)", "outputs", repairable=False)
              for f in folders if f.is_symlink()]
    if linked:
        return linked
    problems = ((path, entry_problem(path)) for path in sorted(root.glob("*/*.safetensors")))
    return [Damage(_rel(store, path), problem, "outputs") for path, problem in problems if problem is not None]


# -- repair -----------------------------------------------------------------------------------------
def _load_run(store: RunStore, config: PurgeConfig, plan):
    bundle = load_run_data(config)
    return Experiment(store, config, plan, bundle, choose(store, resolve_device(config.device))), bundle


def _rebuild_plan(store: RunStore, config: PurgeConfig, manifest: dict) -> dict:
    """plan.json from the config and the forgotten ids the manifest records, proved by its sha256."""
    from purge_engine.data import load_dataset
    from purge_engine.plan import make_plan

    plan = make_plan(config, load_dataset(config.dataset, config.data_root, memory_format=config.memory_format))
    extra = sorted(set(manifest["forgotten"]) - plan.forgotten)
    plan = plan.without(extra) if extra else plan
    store.write_plan(plan)
    proved = file_hash(store.plan_path) == manifest["plan_sha256"]
    return {"path": "plan.json", "action": "rebuilt from the config and the recorded forgotten ids",
            "proved": proved}


def _rebuild_config(store: RunStore, config: PurgeConfig, manifest: dict) -> dict:
    store.write_config(config)
    proved = store.read_config().fingerprint() == manifest["fingerprint"]
    return {"path": "config.json", "action": "rewritten from the manifest's config", "proved": proved}


def _positions(manifest: dict, damage: list[Damage]) -> tuple[dict, set]:
    """(role, constituent) -> first damaged step; and the damaged soft-label names."""
    first: dict[tuple[str, int], int] = {}
    labels = set()
    for d in damage:
        if d.kind == "checkpoint" and d.repairable:
            folder, step = d.name.split("/")
            role, c = folder.rsplit("-", 1)
            position = (role, int(c))
            first[position] = min(first.get(position, 10**9), int(step.removeprefix("step-")))
        elif d.kind == "soft_labels" and d.repairable:
            labels.add(d.name)
    return first, labels


def _delete_files(stem: Path) -> None:
    for suffix in (TENSORS_SUFFIX, SIDECAR_SUFFIX):
        stem.with_suffix(suffix).unlink(missing_ok=True)


def _rebuild_chain(run, role: str, constituent: int, first: int, manifest: dict) -> list[str]:
    """Steps first.. of one constituent, one at a time on the run's own path (execution.choose), each
    stamped with its recorded request id."""
    steps, recorded = run.job(role, constituent).steps, manifest["checkpoints"]
    # the steps whose key the recorded one still is; a later step that a pending request changes is its to train
    mine = [s for s in steps[first:] if recorded.get(f"{role}-{constituent}/step-{s.step}", {}).get("key") == s.key]
    mine = [s for i, s in enumerate(mine) if s.step == first + i]
    for spec in mine:
        _delete_files(run.store.checkpoint_stem(role, constituent, spec.step))
    rebuilt = []
    for spec in mine:
        name = f"{role}-{constituent}/step-{spec.step}"
        run.request_id = recorded.get(name, {}).get("request_id")
        run.executor.train(run, [ChainTask(role, constituent, (spec.step, spec.step + 1))], ignore, lambda: False)
        rebuilt.append(name)
    run.request_id = None
    return rebuilt


def _rebuild_label(run, name: str, manifest: dict, cache) -> None:
    method_student, rest = name.split("/")
    method, k = method_student.rsplit("-", 1)
    _, c, _, j, _, t = rest.split("-")
    k, c, j, t = int(k), int(c), int(j), int(t)
    _delete_files(run.store.labels_stem(method, k, c, j, t))
    cache.meta = {**cache.meta, "request_id": manifest["soft_labels"][name].get("request_id")}
    cache.get(method, k, c, j, (t,), (run.chains.teacher_keys[t],), run.plan.student_shards[k][c][j])


def _rebuild_files(run, manifest: dict, damage: list[Damage]) -> list[tuple[str, str]]:
    """Teachers first (labels come from them), then soft-label files, then students; (folder, name) of
    every file rebuilt, on the run's thread count held for the process (threads.py)."""
    with run.threads_held():
        return _rebuild_in_order(run, manifest, *_positions(manifest, damage))


def _rebuild_in_order(run, manifest: dict, first: dict, labels: set) -> list[tuple[str, str]]:
    rebuilt = []
    for (role, c), step in sorted(first.items()):
        if role == "teacher":
            rebuilt += [("checkpoints", n) for n in _rebuild_chain(run, role, c, step, manifest)]
    cache = Bench(run, ignore).labels("purge")  # a label file's name says its method; the cache serves any
    for name in sorted(labels):
        _rebuild_label(run, name, manifest, cache)
        rebuilt.append(("soft_labels", name))
    for (role, c), step in sorted(first.items()):
        if role != "teacher":
            rebuilt += [("checkpoints", n) for n in _rebuild_chain(run, role, c, step, manifest)]
    return rebuilt


def _prove(store: RunStore, manifest: dict, rebuilt: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for folder, name in rebuilt:
        meta = read_sidecar(store.root / folder / name) or {}
        recorded = manifest["checkpoints" if folder == "checkpoints" else "soft_labels"][name]
        rows.append({"path": f"{folder}/{name}{TENSORS_SUFFIX}", "action": "rebuilt",
                     "param_hash": meta.get("param_hash"), "recorded_hash": recorded["param_hash"],
                     "proved": meta.get("param_hash") == recorded["param_hash"] and meta.get("key") == recorded["key"]})
    return rows


def _repair(found: Inspection, on_event) -> tuple[list[dict], list[str]]:
    """Rebuild what `found` lists; (repaired rows, notes). Call under the writer lock."""
    store, manifest, repaired, notes = found.store, found.manifest, [], []
    kinds = {d.kind for d in found.damage if d.repairable}
    if "temp" in kinds:
        paths = leftovers(store)
        remove_paths(paths)
        repaired += [{"path": _rel(store, p), "action": "removed", "proved": True} for p in paths]
    if "outputs" in kinds:
        repaired += _remove_outputs(store, found.damage)
    if "config" in kinds and manifest is not None:
        repaired.append(_rebuild_config(store, found.config, manifest))
    if "plan" in kinds and manifest is not None:
        repaired.append(_rebuild_plan(store, found.config, manifest))
    again = inspect(store) if kinds & {"config", "plan"} else found
    files = [d for d in again.damage if d.kind in ("checkpoint", "soft_labels") and d.repairable]
    run = None
    if files or found.pending or kinds & {"manifest", "plan", "config"}:
        run, _ = _load_run(store, found.config, store.read_plan())  # on its recorded path (execution.choose)
    if files:
        repaired += _prove(store, manifest, _rebuild_files(run, manifest, files))
    if "manifest" in kinds:
        repaired.append(_rewrite_manifest(run, notes))
    elif run is not None and repaired and all(r["proved"] for r in repaired):
        write_manifest(store, run.config, run.plan)  # rebuilt files may differ in bytes, never in parameters
    if found.pending:
        run.finish_pending(on_event)
        repaired.append({"path": "ledger.sqlite", "action": f"finished request {found.pending[-1]}",
                         "proved": True})
    return repaired, notes


def _remove_outputs(store: RunStore, damage: list[Damage]) -> list[dict]:
    """Damaged outputs-cache files, removed: the next evaluation recomputes each from its checkpoint,
    which check has proved, so the recompute is the proof (there is no record to compare against)."""
    rows = []
    for d in damage:
        if d.kind == "outputs" and d.repairable:
            (store.root / d.path).unlink(missing_ok=True)
            rows.append({"path": d.path, "action": "removed; the next evaluation recomputes it from its proved "
                         "checkpoint, which is its proof", "proved": True})
    return rows


def _rewrite_manifest(run, notes: list[str]) -> dict:
    """A lost manifest, rebuilt from the sidecars; proved only where the ledger's latest record of each
    constituent's final parameter hash agrees (the one record kept outside the files)."""
    data = write_manifest(run.store, run.config, run.plan)
    try:
        done = [e for e in run.ledger.entries() if e["kind"] == "done"]
    except LedgerError:
        done = []
    if not done:
        notes.append("manifest.json rebuilt from the sidecars as they stand: no forget request has been served, so "
                     "no record outside the files can prove them")
        return {"path": MANIFEST_NAME, "action": "rebuilt from the sidecars", "proved": False}
    finals = {k: v for k, v in done[-1]["body"].get("hashes_after", {}).items() if v is not None}
    here = run.param_hashes(sorted({k.rsplit("-", 1)[0] for k in finals}))
    proved = all(here.get(k) == v for k, v in finals.items())
    notes.append(f"manifest.json rebuilt from the sidecars ({len(data['checkpoints'])} checkpoints); the final "
                 f"parameter hash of {len(finals)} constituents checked against the ledger's request "
                 f"{done[-1]['request_id']}: {'equal' if proved else 'NOT equal'}")
    return {"path": MANIFEST_NAME, "action": "rebuilt from the sidecars, checked against the ledger",
            "proved": proved}


def check_run(run_dir: Path | str, repair: bool = False, timeout: float | None = LOCK_TIMEOUT_S,
              on_event=None, on_wait=None) -> dict:
    """{"damaged": [{path, problem}], "repaired": [...], "proved": bool, "run_whole": bool, ...}.

    damaged: what was found (before any repair); repaired: what was rebuilt, removed or rewritten,
    each with whether it equals its record; proved: every repaired item equals its record (true when
    nothing needed repair); run_whole: a check after the repair finds nothing."""
    store = RunStore(run_dir)
    if not store.root.is_dir():
        raise ValueError(f"run: {store.root} does not exist or is not a directory")
    if not store.is_run() and not (store.root / MANIFEST_NAME).is_file():
        store.check_is_run()
    if not repair:  # as a reader: never judge files a live writer is rewriting
        with writer_lock(store, timeout=timeout, holder="checking the run", on_wait=on_wait, shared=True):
            found = inspect(store)
        return _report(store, found, found, [], found.notes)
    with writer_lock(store, timeout=timeout, holder="repairing the run", on_wait=on_wait):
        found = inspect(store)
        repaired, notes = _repair(found, on_event or ignore) if any(d.repairable for d in found.damage) else ([], [])
        after = inspect(store)
    return _report(store, found, after, repaired, found.notes + notes)


def _report(store, found: Inspection, after: Inspection, repaired: list[dict], notes: list[str]) -> dict:
    return {"run": str(store.root), "damaged": [d.public() for d in found.damage],
            "unrepairable": [d.public() for d in after.damage if not d.repairable],
            "repaired": repaired, "proved": all(r["proved"] for r in repaired),
            "run_whole": not after.damage, "remaining": [d.public() for d in after.damage] if repaired else [],
            "notes": notes, "details": [asdict(d) for d in found.damage]}
