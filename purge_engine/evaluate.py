"""The one ensemble prediction (DESIGN section 4.8), shared by Experiment.evaluate, the forget
report, the sweep and the dashboard (which read what those two write).

Every function takes the softmax outputs of a role's *non-empty* constituents stacked as one
tensor `probs` of shape (k, n, classes): k constituents, n samples. k may be 0 (forgetting has
emptied every constituent); the shape still carries n and the class count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from purge_engine.config import AGGREGATIONS
from purge_engine.constituents import count, side_of
from purge_engine.plan import METHODS
from purge_engine.rundir.files import CheckpointError, RunDamaged
from purge_engine.rundir.manifest import read_manifest
from purge_engine.rundir.names import CHECKPOINTS, CheckpointName
from purge_engine.rundir.outputs import EvalSet, OutputsCache
from purge_engine.training import predict_proba
from purge_engine.vocabulary import title

ABSTAIN = -1  # the prediction of an ensemble with no constituent left: never a class, so counted wrong


def mean_softmax(probs: torch.Tensor) -> torch.Tensor:
    """(n, classes): the mean softmax over the k constituents; uniform 1/classes when k == 0."""
    _, n, classes = probs.shape
    if probs.shape[0] == 0:
        return torch.full((n, classes), 1.0 / classes, dtype=probs.dtype, device=probs.device)
    return probs.mean(0)


def vote(probs: torch.Tensor) -> torch.Tensor:
    """(n,) int64: the class most constituents rank first (k >= 1).

    Ties between classes with the same number of votes go to the tied class of highest mean
    softmax, not to the lowest class id; only an exact float tie of that mean too falls back to
    the lowest tied id (argmax takes the first maximum), so the answer is always deterministic."""
    counts = F.one_hot(probs.argmax(2), probs.shape[2]).sum(0)  # (n, classes) votes
    tied = counts == counts.max(1, keepdim=True).values  # (n, classes) the classes sharing the most votes
    return mean_softmax(probs).masked_fill(~tied, -1.0).argmax(1)  # softmax >= 0 > -1: only tied classes win


def ensemble_predict(probs: torch.Tensor, aggregation: str = "mean") -> torch.Tensor:
    """(n,) int64 predictions of the ensemble: "mean" is the argmax of the mean softmax, "vote" the
    majority of per-constituent argmaxes (ties: see vote). With k == 0, ABSTAIN (-1) for every sample."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation: got {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")
    if probs.shape[0] == 0:
        return torch.full((probs.shape[1],), ABSTAIN, dtype=torch.long, device=probs.device)
    return vote(probs) if aggregation == "vote" else probs.mean(0).argmax(1)


def accuracy_of(predicted: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Fraction in [0, 1] of predictions (n,) equal to labels (n,); None for an empty set."""
    if labels.numel() == 0:
        return None
    return float((predicted == labels).float().mean())


def stack_live(probs: list[torch.Tensor], live: list[int]) -> torch.Tensor:
    """(k, n, classes) from every constituent's softmax (n, classes), keeping the constituents in `live`."""
    stacked = torch.stack(probs)
    return stacked.index_select(0, torch.as_tensor(live, dtype=torch.long, device=stacked.device))


# -- over a run's constituents -------------------------------------------------------------------------
def constituent_probs(run, role: str, inputs: torch.Tensor) -> list[torch.Tensor]:
    """Softmax outputs (n, classes) of every constituent of a role, in constituent order."""

    with run.threads_held(strict=False):
        return [predict_proba(run.load_constituent(role, c), inputs) for _, c in run.constituents([role])]


def live_probs(run, probs: list[torch.Tensor], role: str) -> torch.Tensor:
    """(k, n, classes): the outputs stacked, keeping the k non-empty constituents (k may be 0)."""

    return stack_live(probs, [c for c in range(len(probs)) if not run.plan.is_empty(side_of(role), c)])


def evaluate_run(run, inputs: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
    """Accuracy (fractions in [0, 1]; None on no samples) of the teacher ensemble and each trained
    student method's ensemble (aggregated as the config says, section 4.8), and of every single
    constituent, on the test split unless inputs are given."""
    if not run.store.lock_path.exists():  # the lock would add its file: refuse an untrained run before
        _check_teachers(run)
    with run.writing("evaluation", shared=True):  # never beside a forget request rewriting checkpoints
        return _evaluate_roles(run, _check_teachers(run), inputs, labels)


def _check_teachers(run) -> list[str]:
    """The roles to evaluate: every trained one. A role whose final checkpoints the last commit recorded
    current for this plan, and which is not current now, was damaged: refused with the repair, never
    left out of the report in silence."""
    damaged = _damaged_roles(run)
    if damaged:
        raise RunDamaged(f"run: {run.store.root}: the final checkpoints of {', '.join(map(title, damaged))} are "
                         "missing or damaged (its manifest records them current for this plan); `python -m "
                         f"purge_engine check --run {run.store.root} --repair` rebuilds them")
    roles = run.trained_roles()
    if "teacher" not in roles:
        raise ValueError(f"run: {run.store.root} has no trained teachers yet; train it first")
    return roles


def _damaged_roles(run) -> list[str]:
    try:
        recorded = (read_manifest(run.store) or {}).get(CHECKPOINTS, {})
    except CheckpointError:  # an unreadable manifest is check's to report; evaluate judges the files alone
        return []

    def damaged(role: str, c: int) -> bool:
        last = run.job(role, c).steps[-1]
        entry = recorded.get(str(CheckpointName(role, c, last.step)), {})
        return entry.get("key") == last.key and not run.is_current(role, c)

    return [role for role in ("teacher", *METHODS) if any(damaged(role, c) for c in range(count(role, run.plan)))]


def test_set(bundle):
    """The test split as an evaluation set (its outputs are cached per constituent: outputs.py)."""

    return EvalSet("test", bundle.test_x, f"test-{bundle.test_x.shape[0]}")


def _evaluate_roles(run, roles, inputs, labels) -> dict:
    cache, cached = OutputsCache(run), inputs is None  # the test split: read from and kept in the cache
    inputs = run.bundle.test_x if inputs is None else inputs
    labels = run.bundle.test_y if labels is None else labels
    accuracy, constituents = {}, {}
    for role in roles:
        if cached:
            probs = cache.role_outputs(role, [test_set(run.bundle)])["test"]
        else:
            probs = constituent_probs(run, role, inputs)
        accuracy[role] = accuracy_of(ensemble_predict(live_probs(run, probs, role), run.config.aggregation), labels)
        constituents[role] = [accuracy_of(p.argmax(1), labels) for p in probs]
    cache.commit()
    return {"accuracy": accuracy, "constituents": constituents, "samples": int(labels.numel())}
