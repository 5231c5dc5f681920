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
(`.<name>.<random>.tmp`, rundir/atomic.py) and a verification's scratch run are removed. A ledger that
fails its own check (rundir/ledger.py) cannot be rebuilt: its history exists nowhere else. config.json's
execution record (the path the run was trained on, which decides which executor serves it) is outside
the fingerprint; a rebuilt config.json takes it from the damaged file when it can still be read, else
from the first teacher checkpoint's sidecar, as a run recorded before execution records were.

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
from purge_engine.config import PurgeConfig
from purge_engine.constituents import ROLES, Chains, count
from purge_engine.datasets.readers import load_dataset
from purge_engine.events import ignore
from purge_engine.execution.chains import Bench, ChainTask
from purge_engine.execution.choice import choose
from purge_engine.experiment import Experiment
from purge_engine.plan import make_plan
from purge_engine.run import resolve_device
from purge_engine.rundir import records, sidecar
from purge_engine.rundir.checkpoints import CheckpointError, read_sidecar
from purge_engine.rundir.files import file_hash
from purge_engine.rundir.ledger import Ledger, LedgerError
from purge_engine.rundir.leftovers import leftovers, remove_paths
from purge_engine.rundir.lock import LOCK_TIMEOUT_S, writer_lock
from purge_engine.rundir.manifest import build_manifest, read_manifest, wanted_files, write_manifest
from purge_engine.rundir.names import (
    CHECKPOINTS,
    CONFIG_NAME,
    LEDGER_NAME,
    MANIFEST_NAME,
    OUTPUTS,
    PLAN_NAME,
    SIDECAR_SUFFIX,
    SOFT_LABELS,
    TENSORS_SUFFIX,
    CheckpointName,
    ConstituentName,
    LabelName,
    StoredName,
)
from purge_engine.rundir.outputs import entry_problem
from purge_engine.rundir.store import RunStore

_STORED = (("checkpoint", CheckpointName), ("soft_labels", LabelName))  # Damage.kind of each stored name


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
    sidecar_path, tensors, found = stem.with_suffix(SIDECAR_SUFFIX), stem.with_suffix(TENSORS_SUFFIX), []

    def damage(path: Path, problem: str) -> None:
        found.append(Damage(_rel(store, path), problem, kind, name))

    try:
        meta = read_sidecar(stem)
    except CheckpointError as err:
        meta = None
        damage(sidecar_path, f"sidecar unreadable: {err}")
    else:
        hashes = (sidecar.PARAM_HASH, sidecar.FILE_SHA256)
        if meta is None:
            damage(sidecar_path, "sidecar missing")
        elif meta.get(sidecar.KEY) != recorded[sidecar.KEY]:
            damage(sidecar_path, f"sidecar key is {meta.get(sidecar.KEY)!r}, the chain's key is "
                   f"{recorded[sidecar.KEY]!r}")
        elif [meta.get(h) for h in hashes] != [recorded[h] for h in hashes]:
            damage(sidecar_path, "sidecar records other hashes than the manifest")
    if not tensors.exists():
        damage(tensors, "tensors file missing")
    elif file_hash(tensors) != recorded[sidecar.FILE_SHA256]:
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
        damage.append(Damage(CONFIG_NAME, f"{err}" + ("" if recorded else "; no manifest records the config"),
                             "config", repairable=recorded))
        return PurgeConfig.from_dict(manifest["config"]) if recorded else None
    if manifest is not None and config.fingerprint() != manifest["fingerprint"]:
        damage.append(Damage(CONFIG_NAME, "holds another config than the one its checkpoints were trained "
                             "with (its fingerprint differs from the manifest's)", "config"))
        return PurgeConfig.from_dict(manifest["config"])
    return config


def _read_plan(store: RunStore, manifest: dict | None, pending: list[int], damage: list[Damage]):
    rebuildable = manifest is not None
    how = "" if rebuildable else "; no manifest records the forgotten ids it must be rebuilt from"
    try:
        plan = store.read_plan()
    except ValueError as err:
        damage.append(Damage(PLAN_NAME, f"{err}{how}", "plan", repairable=rebuildable))
        return None
    if manifest is not None and not pending and file_hash(store.plan_path) != manifest["plan_sha256"]:
        damage.append(Damage(PLAN_NAME, "its sha256 differs from the one recorded at the last commit", "plan"))
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
    """The manifest against the ledger, whose chain is anchored outside the database (rundir/ledger.py):
    a manifest is self-consistent by its digest, but a manifest, plan and checkpoints copied back from
    before a request are self-consistent too, and would hold the request's samples again. So every
    sample a finished request forgot must be forgotten in the manifest, and, with no request pending,
    each constituent's final parameter hash must be the one the newest finished request recorded."""
    done = records.done_ids(entries)
    back = sorted(records.asked_ids(entries, requests=set(done)) - set(manifest["forgotten"]))
    found = []
    if back:
        found.append(Damage(MANIFEST_NAME, f"records {len(back)} samples as not forgotten that the ledger's finished "
                            f"requests forgot (e.g. #{back[0]}): the run's files were rolled back to before a request, "
                            "so its samples may be in the models again; serve the requests again on a fresh run",
                            "rollback", repairable=False))
    unexplained = sorted(set(manifest["forgotten"]) - records.asked_ids(entries))
    if unexplained:
        found.append(Damage(LEDGER_NAME, f"names no request for {len(unexplained)} samples the manifest records as "
                            f"forgotten (e.g. #{unexplained[0]}): the ledger was removed, emptied or replaced, and "
                            "with it the history of those requests (it exists nowhere else)", "ledger",
                            repairable=False))
    if pending or not done or config is None or plan is None:
        return found
    newest = records.of_kind(entries, records.DONE)[-1]
    chains = Chains(config, plan)
    for position, recorded in sorted(newest[records.BODY].get(records.HASHES_AFTER, {}).items()):
        owner = ConstituentName.parse(position)
        if recorded is None or owner.role not in ROLES or owner.constituent >= count(owner.role, plan):
            continue
        last = chains.steps(owner.role, owner.constituent)[-1].step
        name = str(CheckpointName(owner.role, owner.constituent, last))
        held = manifest[CHECKPOINTS].get(name, {}).get(sidecar.PARAM_HASH)
        if held != recorded:
            found.append(Damage(MANIFEST_NAME, f"records {name} with another parameter hash than the ledger's request "
                                f"{newest[records.REQUEST_ID]} ({str(held)[:12]} against {recorded[:12]}): the "
                                "manifest is not the one that request's commit wrote", "rollback", name,
                                repairable=False))
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
    if not current[CHECKPOINTS]:
        notes.append("the run has not finished a training yet: nothing is recorded to check against")
        return None
    damage.append(Damage(MANIFEST_NAME, "missing: the files can be checked only against their own sidecars",
                         "manifest"))
    return None


def _files_damage(store, manifest, config, plan, pending) -> list[Damage]:
    """Each recorded file against its record. While a request is pending, positions whose key the new
    plan changes are the request's to rewrite and are left out."""
    wanted = {str(name): key for name, key in wanted_files(Chains(config, plan))} if plan is not None else None
    found = []
    for kind, stored in _STORED:
        for text, recorded in sorted(manifest[stored.AREA].items()):
            name = stored.parse(text)
            if wanted is not None and wanted.get(text) != recorded[sidecar.KEY]:
                if pending:
                    continue
                found.append(Damage(f"{name.AREA}/{text}{SIDECAR_SUFFIX}", "plan.json asks for another key here than "
                                    "the one recorded at the last commit", kind, text, repairable=False))
                continue
            try:
                stem = store.stem(name)
            except ValueError as err:  # a linked folder: never read, never repaired through
                found.append(Damage(f"{name.AREA}/{name.folder}", str(err), kind, text, repairable=False))
                continue
            found += _file_problems(store, stem, recorded, kind, text)
    return found


def _outputs_damage(store: RunStore) -> list[Damage]:
    """Outputs-cache files evaluate would not trust (outputs.entry_problem). A linked cache folder is
    refused instead, as a linked checkpoint folder is: repair never deletes through a link."""
    root = store.root / OUTPUTS
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

    plan = make_plan(config, load_dataset(config.dataset, config.data_root, memory_format=config.memory_format))
    extra = sorted(set(manifest["forgotten"]) - plan.forgotten)
    plan = plan.without(extra) if extra else plan
    store.write_plan(plan)
    proved = file_hash(store.plan_path) == manifest["plan_sha256"]
    return {"path": PLAN_NAME, "action": "rebuilt from the config and the recorded forgotten ids",
            "proved": proved}


def _rebuild_config(store: RunStore, config: PurgeConfig, manifest: dict) -> dict:
    """config.json from the manifest's config, proved by its fingerprint, with its execution record: the
    damaged file's when it can still be read, else the path the first teacher checkpoint records (the
    path decides which executor serves the run; without it a run trained on lanes would be retrained)."""
    first = store.first_checkpoint_path()
    store.write_config(config, store.read_environment() or ({"path": first} if first else None))
    proved = store.read_config().fingerprint() == manifest["fingerprint"]
    return {"path": CONFIG_NAME, "action": "rewritten from the manifest's config", "proved": proved}


def _positions(damage: list[Damage]) -> tuple[dict[tuple[str, int], int], set[LabelName]]:
    """(role, constituent) -> first damaged step; and the damaged soft-label files."""
    first: dict[tuple[str, int], int] = {}
    labels = set()
    for d in damage:
        if d.kind == "checkpoint" and d.repairable:
            name = CheckpointName.parse(d.name)
            position = (name.role, name.constituent)
            first[position] = min(first.get(position, name.step), name.step)
        elif d.kind == "soft_labels" and d.repairable:
            labels.add(LabelName.parse(d.name))
    return first, labels


def _delete_files(stem: Path) -> None:
    for suffix in (TENSORS_SUFFIX, SIDECAR_SUFFIX):
        stem.with_suffix(suffix).unlink(missing_ok=True)


def _rebuild_chain(run, role: str, constituent: int, first: int, manifest: dict) -> list[CheckpointName]:
    """Steps first.. of one constituent, one at a time on the run's own path (execution.choose), each
    stamped with its recorded request id."""
    steps, recorded = run.job(role, constituent).steps, manifest[CHECKPOINTS]

    def record_of(spec) -> dict:
        return recorded.get(str(CheckpointName(role, constituent, spec.step)), {})

    # the steps whose key the recorded one still is; a later step that a pending request changes is its to train
    mine = [s for s in steps[first:] if record_of(s).get(sidecar.KEY) == s.key]
    mine = [s for i, s in enumerate(mine) if s.step == first + i]
    for spec in mine:
        _delete_files(run.store.stem(CheckpointName(role, constituent, spec.step)))
    rebuilt = []
    for spec in mine:
        run.request_id = record_of(spec).get(sidecar.REQUEST_ID)
        run.executor.train(run, [ChainTask(role, constituent, (spec.step, spec.step + 1))], ignore, lambda: False)
        rebuilt.append(CheckpointName(role, constituent, spec.step))
    run.request_id = None
    return rebuilt


def _rebuild_label(run, name: LabelName, manifest: dict, cache) -> None:
    _delete_files(run.store.stem(name))
    cache.meta = {**cache.meta, sidecar.REQUEST_ID: manifest[SOFT_LABELS][str(name)].get(sidecar.REQUEST_ID)}
    cache.get(name.method, name.student, name.chunk, name.slice, (name.teacher,),
              (run.chains.teacher_keys[name.teacher],), name.ids(run.plan))


def _rebuild_files(run, manifest: dict, damage: list[Damage]) -> list[StoredName]:
    """Teachers first (labels come from them), then soft-label files, then students; the name of every
    file rebuilt, on the run's thread count held for the process (threads.py)."""
    with run.threads_held():
        return _rebuild_in_order(run, manifest, *_positions(damage))


def _rebuild_in_order(run, manifest: dict, first: dict, labels: set[LabelName]) -> list[StoredName]:
    rebuilt: list[StoredName] = []
    for (role, c), step in sorted(first.items()):
        if role == "teacher":
            rebuilt += _rebuild_chain(run, role, c, step, manifest)
    cache = Bench(run, ignore).labels("purge")  # a label file's name says its method; the cache serves any
    for name in sorted(labels, key=str):
        _rebuild_label(run, name, manifest, cache)
        rebuilt.append(name)
    for (role, c), step in sorted(first.items()):
        if role != "teacher":
            rebuilt += _rebuild_chain(run, role, c, step, manifest)
    return rebuilt


def _prove(store: RunStore, manifest: dict, rebuilt: list[StoredName]) -> list[dict]:
    rows = []
    for name in rebuilt:
        meta = read_sidecar(store.stem(name)) or {}
        recorded = manifest[name.AREA][str(name)]
        rows.append({"path": f"{name.AREA}/{name}{TENSORS_SUFFIX}", "action": "rebuilt",
                     "param_hash": meta.get(sidecar.PARAM_HASH), "recorded_hash": recorded[sidecar.PARAM_HASH],
                     "proved": meta.get(sidecar.PARAM_HASH) == recorded[sidecar.PARAM_HASH]
                     and meta.get(sidecar.KEY) == recorded[sidecar.KEY]})
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
        repaired.append({"path": LEDGER_NAME, "action": f"finished request {found.pending[-1]}",
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
        done = records.of_kind(run.ledger.entries(), records.DONE)
    except LedgerError:
        done = []
    if not done:
        notes.append("manifest.json rebuilt from the sidecars as they stand: no forget request has been served, so "
                     "no record outside the files can prove them")
        return {"path": MANIFEST_NAME, "action": "rebuilt from the sidecars", "proved": False}
    finals = {k: v for k, v in done[-1][records.BODY].get(records.HASHES_AFTER, {}).items() if v is not None}
    here = run.param_hashes(sorted({ConstituentName.parse(k).role for k in finals}))
    proved = all(here.get(k) == v for k, v in finals.items())
    notes.append(f"manifest.json rebuilt from the sidecars ({len(data[CHECKPOINTS])} checkpoints); the final "
                 f"parameter hash of {len(finals)} constituents checked against the ledger's request "
                 f"{done[-1][records.REQUEST_ID]}: {'equal' if proved else 'NOT equal'}")
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
