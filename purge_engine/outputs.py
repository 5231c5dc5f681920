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
the older, so the cache stays four small files per constituent. It is a cache, not a record: the
manifest does not list it, `check` ignores it, deleting it costs only time. Each set is its own
forward pass, so a cached set holds the same bits it would have if computed now.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from purge_engine.checkpoints import checked_sidecar, environment

OUTPUTS_DIR = "outputs"
FORMAT = "1"


@dataclass(frozen=True)
class EvalSet:
    """Inputs a role is evaluated on, named: `ids` says which samples (for a train subset, the hash of
    its ids; for the test split, "test-<n>")."""

    name: str
    inputs: torch.Tensor
    ids: str


def outputs_path(store, role: str, constituent: int, name: str) -> Path:
    return store.root / OUTPUTS_DIR / f"{role}-{constituent}" / f"{name}.safetensors"


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
        from purge_engine.training import predict_proba  # deferred: keeps this module's imports light

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
    expect = {"role": role, "constituent": constituent, "step": last.step, "key": last.key}
    meta = checked_sidecar(run.store.checkpoint_stem(role, constituent, last.step), expect)
    return {"format": FORMAT, "key": last.key, "checkpoint_sha256": meta["file_sha256"],
            **{k: str(v) for k, v in environment(run.device).items()}}


def _read(path: Path, s: EvalSet, checkpoint: dict[str, str], device: torch.device) -> torch.Tensor | None:
    """The cached outputs when the file describes this checkpoint, set and environment; else None."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if meta != {**checkpoint, "set": s.name, "ids": s.ids, "rows": str(s.inputs.shape[0])}:
                return None
            probs = handle.get_tensor("probs")
    except (FileNotFoundError, SafetensorError, OSError, ValueError):
        return None
    return probs.to(device) if probs.shape[0] == s.inputs.shape[0] else None


def _write(path: Path, probs: torch.Tensor, s: EvalSet, checkpoint: dict[str, str]) -> None:
    """Store atomically (a crash leaves the old entry or the new one); no fsync: it is a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({"probs": probs.detach().to("cpu").contiguous()}, tmp,
                  metadata={**checkpoint, "set": s.name, "ids": s.ids, "rows": str(s.inputs.shape[0])})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
