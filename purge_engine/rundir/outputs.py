"""Each constituent's softmax outputs on an evaluation set, cached by the checkpoint they came from.

    <run>/outputs/<role>-<id>/<set>.safetensors

Evaluating is a forward pass of every constituent over the test split (and, around a forget
request, over a few thousand train samples): 7 s per constituent at the paper's scale (the MNIST
CNN on 10,000 Fashion-MNIST images, one thread), so 56 constituents cost 6.5 minutes before and
again after a request that retrained three of them. A constituent's outputs depend only on its
parameters, the inputs and the environment of the forward pass, so they are kept beside the run and
reused while all three are unchanged:

- the parameters: the final checkpoint's content key and the sha256 of its tensor file, checked
  against the file itself at every read (a damaged or replaced checkpoint is never answered from
  the cache: it is loaded, and refused, as without one);
- the inputs: the set's name and the hash of its sample ids (the test split: its size);
- the environment: torch version, CPU capability, threads and device.

One file per constituent and set name (test, retained, members, forgotten): a newer entry replaces
the older, so the cache stays four small files per constituent. Each set is its own forward pass, so
a cached set holds the same bits it would have if computed now.

It is a cache, not a record: the manifest does not list it and deleting it costs only time. But
evaluate reads numbers back from it, so each file's metadata records the hash of its outputs
(checkpoints.hash_tensors, the parameter hash of checkpoints), checked at every read: a file that
cannot be read, holds other rows than it says or no longer hashes to its record is treated as absent,
recomputed from its checkpoint and rewritten. `check` reports such a file as damage and `--repair`
removes it (entry_problem below, shared by both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from purge_engine.rundir import sidecar
from purge_engine.rundir.atomic import atomic_write
from purge_engine.rundir.checkpoints import checked_sidecar, environment, hash_tensors
from purge_engine.rundir.names import OUTPUTS, TENSORS_SUFFIX, CheckpointName, ConstituentName
from purge_engine.training import predict_proba

FORMAT = "2"  # 2: records HASH_FIELD (a format-1 entry is stale: recomputed)
TENSOR = "probs"
HASH_FIELD = "probs_hash"


@dataclass(frozen=True)
class EvalSet:
    """Inputs a role is evaluated on, named: `ids` says which samples (for a train subset, the hash of
    its ids; for the test split, "test-<n>")."""

    name: str
    inputs: torch.Tensor
    ids: str


def outputs_path(store, role: str, constituent: int, name: str) -> Path:
    return store.root / OUTPUTS / str(ConstituentName(role, constituent)) / f"{name}{TENSORS_SUFFIX}"


class OutputsCache:
    """Reads from and fills the outputs cache of one run. New entries are written by commit(), once
    everything asked of the cache has succeeded: an evaluation refused on a damaged checkpoint
    leaves the run directory byte-identical."""

    def __init__(self, run) -> None:
        self.run = run
        self.pending: list[tuple[Path, torch.Tensor, EvalSet, dict[str, str]]] = []

    def role_outputs(self, role: str, sets: list[EvalSet]) -> dict[str, list[torch.Tensor]]:
        """set name -> the softmax outputs (n, classes) of every constituent of `role`, in constituent
        order, each read from the cache when it still describes that constituent, else computed
        (one forward pass per set)."""

        run = self.run
        result: dict[str, list[torch.Tensor]] = {s.name: [] for s in sets}
        with run.threads_held(strict=False):  # the environment each entry records is the one it ran in
            for _, c in run.constituents([role]):
                checkpoint = _checkpoint_of(run, role, c)
                model = None
                for s in sets:
                    path = outputs_path(run.store, role, c, s.name)
                    probs = _read(path, s, checkpoint, run.device)
                    if probs is None:
                        if model is None:
                            model = run.load_constituent(role, c)
                        probs = predict_proba(model, s.inputs)
                        self.pending.append((path, probs, s, checkpoint))
                    result[s.name].append(probs)
        return result

    def commit(self) -> None:
        for entry in self.pending:
            _write(*entry)
        self.pending.clear()


def _checkpoint_of(run, role: str, constituent: int) -> dict[str, str]:
    """What names the constituent's parameters and the forward pass's environment, checked on disk
    (CheckpointError, as a load would raise, when the final checkpoint is not current or damaged)."""
    last = run.job(role, constituent).steps[-1]
    name = CheckpointName(role, constituent, last.step)
    meta = checked_sidecar(run.store.stem(name), sidecar.identity(name, last.key))
    return {"format": FORMAT, "key": last.key, "checkpoint_sha256": meta[sidecar.FILE_SHA256],
            **{k: str(v) for k, v in environment(run.device).items()}}


def _describe(s: EvalSet, checkpoint: dict[str, str]) -> dict[str, str]:
    """The metadata an entry for this checkpoint, set and environment holds, its hash aside."""
    return {**checkpoint, "set": s.name, "ids": s.ids, "rows": str(s.inputs.shape[0])}


def _read(path: Path, s: EvalSet, checkpoint: dict[str, str], device: torch.device) -> torch.Tensor | None:
    """The cached outputs when the file describes this checkpoint, set and environment and still
    holds the outputs it recorded; else None (computed again: a damaged entry is never answered)."""
    try:
        meta, probs = read_entry(path)
    except OutputsError:
        return None
    meta.pop(HASH_FIELD)  # read_entry proved the outputs by it; the rest must describe this entry
    return probs.to(device) if meta == _describe(s, checkpoint) else None


class OutputsError(ValueError):
    """An outputs-cache file that cannot be trusted; the message says why, as one clause."""


def read_entry(path: Path) -> tuple[dict[str, str], torch.Tensor]:
    """(metadata, probs (rows, classes)) of one cache file, proved by the hash its metadata records;
    OutputsError when it cannot be read, holds other rows than it records, or no longer hashes to it."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta, probs = handle.metadata() or {}, handle.get_tensor(TENSOR)
    except (SafetensorError, OSError, ValueError) as err:
        raise OutputsError(f"cannot be read as an outputs file ({str(err)[:80]})") from None
    if probs.ndim != 2 or str(probs.shape[0]) != meta.get("rows"):
        raise OutputsError(f"holds outputs of shape {tuple(probs.shape)}, its metadata records "
                           f"{meta.get('rows')!r} rows")
    if hash_tensors({TENSOR: probs}) != meta.get(HASH_FIELD):
        raise OutputsError("its outputs no longer hash to the hash recorded beside them (edited or corrupted)")
    return meta, probs


def entry_problem(path: Path) -> str | None:
    """Why `check` calls this cache file damaged, or None. An entry of another format is stale, not
    damaged: the reader never answers from it, the next evaluation replaces it."""
    try:
        read_entry(path)
    except OutputsError as err:
        return None if _format_of(path) not in (None, FORMAT) else str(err)
    return None


def _format_of(path: Path) -> str | None:
    """The format an entry's metadata names, or None when it cannot be read."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return (handle.metadata() or {}).get("format")
    except (SafetensorError, OSError, ValueError):
        return None


def _write(path: Path, probs: torch.Tensor, s: EvalSet, checkpoint: dict[str, str]) -> None:
    """Store atomically (a crash leaves the old entry or the new one); no fsync: it is a cache."""
    cpu = probs.detach().to("cpu").contiguous()
    metadata = {**_describe(s, checkpoint), HASH_FIELD: hash_tensors({TENSOR: cpu})}
    atomic_write(path, lambda temp: save_file({TENSOR: cpu}, str(temp), metadata=metadata), durable=False)
