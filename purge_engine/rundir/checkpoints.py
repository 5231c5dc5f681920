"""Checkpoints: safetensors plus a JSON sidecar, named by content, written atomically. Never pickle.

A checkpoint's key hashes everything that decides its parameters: the config fingerprint, the
role and position, the sample ids trained on, the epochs, the keys of the labels behind a
student's targets, and the key of the checkpoint it started from. A checkpoint whose stored key
equals the key the plan asks for is reused by construction; any other is retrained.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from purge_engine.rundir import sidecar
from purge_engine.rundir.atomic import atomic_write, atomic_write_json
from purge_engine.rundir.files import (  # noqa: F401 (re-exported: checkpoint code's vocabulary)
    CheckpointError,
    RunDamaged,
    content_key,
    file_hash,
    hash_ids,
    read_json,
)
from purge_engine.rundir.names import SIDECAR_SUFFIX, TENSORS_SUFFIX

FORMAT = 1


# -- hashing -------------------------------------------------------------------------
def hash_tensors(tensors: dict[str, torch.Tensor]) -> str:
    """Hash of parameter bytes, in name order: equal hashes mean bitwise-equal parameters."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:20]


def environment(device: torch.device) -> dict:
    """What decides bitwise results besides the data: recorded in every sidecar (section 6)."""
    found = {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    if device.type == "cuda":  # what else decides a GPU's bits (pinned by Run.apply_threads)
        found |= {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                  "deterministic": torch.are_deterministic_algorithms_enabled(),
                  "cudnn_benchmark": torch.backends.cudnn.benchmark,
                  "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_conv": torch.backends.cudnn.allow_tf32}
    return found


# -- save and load ------------------------------------------------------------------------
def save_checkpoint(stem: Path, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Write <stem>.safetensors, then its <stem>.json sidecar (the sidecar last: it is the commit)."""
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}

    def write(temp: Path) -> str:
        save_file(cpu, str(temp))
        return file_hash(temp)  # of the bytes written, before they are moved into place

    size = sum(t.numel() * t.element_size() for t in cpu.values())
    tensors_hash = atomic_write(stem.with_suffix(TENSORS_SUFFIX), write, size=size)
    written = {**meta, sidecar.FORMAT: FORMAT, sidecar.FILE_SHA256: tensors_hash,
               sidecar.PARAM_HASH: hash_tensors(cpu)}
    atomic_write_json(stem.with_suffix(SIDECAR_SUFFIX), written)
    return written


def read_sidecar(stem: Path) -> dict | None:
    """The sidecar of a checkpoint, or None when there is none yet."""
    path = stem.with_suffix(SIDECAR_SUFFIX)
    if not path.exists():
        return None
    meta = read_json(path, f"checkpoint {stem.parent.name}/{stem.name}")
    if meta.get(sidecar.FORMAT) != FORMAT:
        raise CheckpointError(f"checkpoint {stem.parent.name}/{stem.name}: format is {meta.get(sidecar.FORMAT)!r}, "
                              f"expected {FORMAT}")
    return meta


def repair_hint(stem: Path) -> str:
    """The sentence that ends a damaged file's error: how to heal the run it belongs to."""
    root = stem.parents[2] if len(stem.parents) > 2 else stem.parent  # <run>/checkpoints/<role>-<id>/step-<m>
    return f"; `python -m purge_engine check --run {root} --repair` rebuilds it"


def damaged(stem: Path, sentence: str) -> RunDamaged:
    """The typed error of a damaged file of a run, its sentence ending with how to repair the run."""
    return RunDamaged(f"{sentence}{repair_hint(stem)}")


def load_checkpoint(stem: Path, expect: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint whose sidecar matches `expect` field by field; CheckpointError otherwise."""
    checked_sidecar(stem, expect)
    path = stem.with_suffix(TENSORS_SUFFIX)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise damaged(stem, f"checkpoint {stem.parent.name}/{stem.name}: {path} cannot be read: {err}") from None
    return {k: v.to(device) for k, v in tensors.items()}


def checked_sidecar(stem: Path, expect: dict) -> dict:
    """The sidecar of a checkpoint that matches `expect` field by field and whose tensor file hashes
    to the sidecar's file_sha256; CheckpointError naming what is wrong otherwise."""
    name = f"checkpoint {stem.parent.name}/{stem.name}"
    try:
        meta = read_sidecar(stem)
    except CheckpointError as err:
        raise damaged(stem, str(err)) from None
    if meta is None:
        raise damaged(stem, f"{name}: its sidecar {stem.with_suffix(SIDECAR_SUFFIX)} is missing")
    for field, value in expect.items():
        if meta.get(field) != value:
            raise CheckpointError(f"{name}: {field} is {meta.get(field)!r}, expected {value!r}")
    path = stem.with_suffix(TENSORS_SUFFIX)
    if not path.exists():
        raise damaged(stem, f"{name}: {path} is missing")
    if file_hash(path) != meta[sidecar.FILE_SHA256]:
        raise damaged(stem, f"{name}: {path} is corrupted or truncated (its hash differs from the sidecar's)")
    return meta
