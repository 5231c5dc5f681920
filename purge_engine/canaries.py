"""Canaries: samples planted with a flipped label, to show what leaks from a teacher through
distillation and that forgetting removes it (DESIGN section 14; Jagielski et al., "Students Parrot
Their Teachers", NeurIPS 2023, the overlap case).

A run with `canaries = K` marks K samples that sit both in Teacher 1's shard and in the first chunk
of Student 1 (the chunk Teacher 1 labels alone under PURGE), so Student 1 is queried at the canary
inputs and learns whatever Teacher 1 says about them. Each canary's label is replaced by another
class. Both choices are functions of the config and each sample's own id and label alone:
- which samples: the placement over the dataset's whole id space (plan.make_plan places every id
  there before dropping the ones the data does not hold), read in the order of a seeded permutation
  of that id space; a sample excluded from the data leaves the other canaries where they were;
- which label: (label + 1 + seed_for(seed, "canary-label", id) mod (classes - 1)) mod classes.
So a from-scratch run on data without some canaries plants exactly the remaining ones, and
exactness holds with canaries as without.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from purge_engine.config import PurgeConfig
from purge_engine.plan import make_plan
from purge_engine.seeding import seed_for

CANARY_TEACHER, CANARY_STUDENT = 0, 0  # Teacher 1's shard, Student 1's first chunk


def eligible_ids(config: PurgeConfig, id_space: int) -> np.ndarray:
    """int64 sorted: ids that sit in Teacher 1's shard and in Student 1's first chunk when the whole id
    space is placed (plan.make_plan over every id)."""

    full = make_plan(config.replace(canaries=0), id_space)
    student_chunk = np.concatenate(full.student_shards[CANARY_STUDENT][0])
    return np.intersect1d(full.teacher_shard(CANARY_TEACHER), student_chunk).astype(np.int64)


def canary_ids(config: PurgeConfig, id_space: int) -> np.ndarray:
    """int64 sorted (K,): the run's canaries over the whole id space (some may be excluded from the data).
    ValueError naming `canaries` when the layout has fewer eligible samples than asked for."""
    if config.canaries == 0:
        return np.zeros(0, dtype=np.int64)
    eligible = eligible_ids(config, id_space)
    if eligible.size < config.canaries:
        raise ValueError(f"canaries: got {config.canaries}, must be in [0, {eligible.size}] for this layout (the "
                         "samples that sit both in Teacher 1's shard and in Student 1's first chunk)")
    order = np.random.default_rng(seed_for(config.seed, "canaries")).permutation(id_space)
    rank = np.empty(id_space, dtype=np.int64)
    rank[order] = np.arange(id_space)
    return np.sort(eligible[np.argsort(rank[eligible], kind="stable")[: config.canaries]])


def held_canaries(config: PurgeConfig, data) -> np.ndarray:
    """int64 sorted: the config's canaries that the bundle `data` still holds."""
    ids = canary_ids(config, data.id_space or data.n_train)
    return ids[np.isin(ids, data.sample_ids)]


def planted_labels(seed: int, ids: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 (K,): each canary's flipped label, never its own (labels: the true labels of `ids`)."""
    shift = np.asarray([1 + seed_for(seed, "canary-label", int(i)) % (n_classes - 1) for i in ids], dtype=np.int64)
    return (np.asarray(labels, dtype=np.int64) + shift) % n_classes


def plant(bundle, config: PurgeConfig):
    """The bundle with every held canary's train label flipped (the bundle itself when there are none)."""
    held = held_canaries(config, bundle)
    if held.size == 0:
        return bundle
    import torch  # deferred: the CLI's plan imports this module without loading torch

    rows = bundle.rows(held)
    true = bundle.train_y[rows].cpu().numpy()
    labels = bundle.train_y.clone()
    labels[rows] = torch.as_tensor(planted_labels(config.seed, held, true, bundle.spec.n_classes),
                                   dtype=labels.dtype, device=labels.device)
    return dataclasses.replace(bundle, train_y=labels)


def load_run_data(config: PurgeConfig, download: bool = False, exclude=()):
    """The dataset a run trains on: loaded (data.load_dataset) and with the config's canaries planted."""
    from purge_engine.datasets.readers import load_dataset

    bundle = load_dataset(config.dataset, config.data_root, download=download, exclude=exclude,
                          memory_format=config.memory_format)
    return plant(bundle, config)


def canary_rates(probs: list, planted) -> list[float | None]:
    """Per constituent, the share in [0, 1] of canaries it predicts with the planted label.
    probs: each constituent's softmax on the canary inputs (K, classes); planted: (K,)."""
    return [float((p.argmax(1) == planted).float().mean()) if planted.numel() else None for p in probs]
