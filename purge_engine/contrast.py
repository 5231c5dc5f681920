"""Exact against approximate, at equal compute (DESIGN section 14): a labelled contrast, never a
product feature.

While a forget request is served, the pre-request weights of the constituents PURGE retrains (the
teachers and PURGE students in its scope) are kept in memory, never on disk. Once PURGE has
retrained them, each is also "unlearned" approximately: fine-tuned from its pre-request weights on its
retained data with its own loss, for the sample-steps PURGE spent on it. Then two stress tests run on
PURGE's result, the approximate result and (in verify) the from-scratch reference:
- relearning: RELEARN_ROUNDS epochs of fine-tuning on the retained data only, scored after each;
- weight quantisation: every floating tensor rounded to QUANT_BITS-bit symmetric levels, scored.
Scores are the membership p-values of the forgotten samples on those constituents (audit.py) and the
canary rate. PURGE's result equals the reference bit for bit, so its curves coincide with the
reference's; the approximate method's need not.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from purge_engine.audit import Target, audited_outputs, score_targets
from purge_engine.canaries import held_canaries
from purge_engine.events import ignore
from purge_engine.execution.chains import Bench, ChainTask
from purge_engine.plan import student_sample_steps, teacher_sample_steps
from purge_engine.rundir.names import ConstituentName
from purge_engine.training import predict_proba, train_slice_step

METHOD = "fine-tuning on the retained data (approximate unlearning, a contrast)"
RELEARN_ROUNDS = 3
QUANT_BITS = (8, 4)
ROLE_INDEX = {"teacher": 0, "purge": 1}


def contrasted(scope: dict) -> list[tuple[str, int]]:
    """(role, constituent) PURGE retrains in a scope (RetrainScope.to_dict()): teachers and PURGE students."""
    return [("teacher", int(i)) for i in scope["teachers"]] + \
        [("purge", int(k)) for k in scope["students"].get("purge", {})]


def snapshot(run, scope: dict) -> dict[tuple[str, int], dict[str, torch.Tensor]]:
    """The pre-request weights of what PURGE will retrain, copied into memory."""
    return {(role, c): {k: v.detach().clone() for k, v in run.load_constituent(role, c).state_dict().items()}
            for role, c in contrasted(scope)}


# -- the constituent's retained data and loss ------------------------------------------------------------
def _model(run, role: str, c: int, state) -> torch.nn.Module:
    model = run.new_model(role, c).to(run.device)
    model.load_state_dict(state)
    return model


def _retained(run, role: str, c: int, bench: Bench):
    """(inputs, targets, loss, lr) of the constituent's final step on the current plan: its retained data."""
    chain = bench.chain(ChainTask(role, c))
    inputs, targets = chain.step_data(chain.job.steps[-1])
    return inputs, targets, chain.loss, chain.lr


def _train(run, model, data, epochs: int, *position: int) -> int:
    """Fine-tune for `epochs` passes over data (seeded by position); the sample-steps spent."""

    inputs, targets, loss, lr = data
    train_slice_step(model, inputs, targets, loss, epochs, run.config.batch_size, lr, (run.config.seed, *position))
    return int(inputs.shape[0]) * epochs


def quantised(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """A copy with every floating tensor rounded to symmetric per-tensor levels of `bits` bits."""
    copied, levels = copy.deepcopy(model), 2 ** (bits - 1) - 1
    with torch.no_grad():
        for tensor in copied.state_dict().values():
            if tensor.is_floating_point() and tensor.numel():
                scale = tensor.abs().max() / levels
                if scale > 0:
                    tensor.copy_((tensor / scale).round() * scale)
    return copied


# -- scoring a set of models -------------------------------------------------------------------------------
class Scorer:
    """Scores replacement models for some constituents of a run state: the forgotten samples' membership
    p-values on them (references: the state's other constituents) and their canary rates."""

    def __init__(self, run, found: list[Target], sample_ids, data, canaries: np.ndarray, extra: dict | None):
        self.found, self.sample_ids = found, [int(i) for i in sample_ids]
        self.x, self.y = data.take(self.sample_ids)
        self.outputs = audited_outputs(run, found, self.x, self.sample_ids, extra)
        self.positions = {i: r for r, i in enumerate(self.sample_ids)}
        self.canary = data.take(canaries) if canaries.size else None

    def point(self, models: dict[tuple[str, int], torch.nn.Module]) -> dict:
        replaced = {key: predict_proba(m, self.x) for key, m in models.items()}
        rows = [r for r in score_targets(self.found, self.outputs, self.positions, self.y, replaced)
                if (r["role"], r["constituent"]) in models]
        point = {"p": [r["p"] for r in rows], "z": [r["z"] for r in rows]}
        if self.canary is not None:
            cx, cy = self.canary
            rate = {key: float((predict_proba(m, cx).argmax(1) == cy).float().mean()) for key, m in models.items()}
            point["canary_rate"] = {str(ConstituentName(*key)): value for key, value in rate.items()}
        return point


def stress(run, models: dict[tuple[str, int], torch.nn.Module], scorer: Scorer, bench: Bench) -> dict:
    """Relearning curve (a point after each round of one epoch on the retained data) and quantisation."""
    data = {key: _retained(run, *key, bench) for key in models}
    quant = {str(bits): scorer.point({k: quantised(m, bits) for k, m in models.items()}) for bits in QUANT_BITS}
    learning = {k: copy.deepcopy(m) for k, m in models.items()}
    curve = [{"round": 0, **scorer.point(learning)}]
    for round_ in range(1, RELEARN_ROUNDS + 1):
        for (role, c), model in learning.items():
            _train(run, model, data[(role, c)], 1, "relearn", ROLE_INDEX[role], c, round_)
        curve.append({"round": round_, **scorer.point(learning)})
    return {"relearning": curve, "quantisation": quant}


def _rows(found: list[Target], keys) -> list[dict]:
    return [{"sample_id": t.sample_id, "role": t.role, "constituent": t.constituent} for t in found
            if (t.role, t.constituent) in keys]


def measure(run, found: list[Target], sample_ids, before: dict, budgets: dict[str, int],
            extra: dict | None = None) -> dict:
    """After PURGE's retraining: the approximate method from the pre-request weights `before`, at the
    sample-steps PURGE spent per constituent (`budgets`, "role-c" -> sample-steps), and both stress tests
    on PURGE's result and the approximate one. extra: the membership test's extra reference models."""

    keys = list(before)
    with run.threads_held():
        bench = Bench(run, ignore)
        scorer = Scorer(run, found, sample_ids, run.bundle, held_canaries(run.config, run.bundle), extra)
        approx, spent = {}, {}
        for role, c in keys:
            model, data = _model(run, role, c, before[(role, c)]), _retained(run, role, c, bench)
            owner = str(ConstituentName(role, c))
            epochs = max(1, round(budgets[owner] / max(int(data[0].shape[0]), 1)))
            spent[owner] = _train(run, model, data, epochs, "contrast", ROLE_INDEX[role], c)
            approx[(role, c)] = model
        purge = {key: run.load_constituent(*key) for key in keys}
        owners = [str(ConstituentName(*key)) for key in keys]
        return {"method": METHOD, "constituents": owners, "rows": _rows(found, keys),
                "budget_sample_steps": budgets, "spent_sample_steps": spent,
                "relearn_rounds": RELEARN_ROUNDS, "quantisation_bits": list(QUANT_BITS),
                "series": {"purge": stress(run, purge, scorer, bench),
                           "approximate": stress(run, approx, scorer, bench)}}


def reference_series(reference, found: list[Target], sample_ids, keys, data, extra: dict | None = None) -> dict:
    """The stress tests on a from-scratch reference's constituents `keys` (verify), audited inputs from data."""

    with reference.threads_held():
        scorer = Scorer(reference, found, sample_ids, data, held_canaries(reference.config, data), extra)
        models = {key: reference.load_constituent(*key) for key in keys}
        return stress(reference, models, scorer, Bench(reference, ignore))


def budgets(plan, scope: dict) -> dict[str, int]:
    """"role-c" (names.ConstituentName) -> the sample-steps PURGE spends retraining it (plan: after the request)."""

    out = {str(ConstituentName("teacher", int(i))): teacher_sample_steps(plan, int(i), s)
           for i, s in scope["teachers"].items()}
    out.update({str(ConstituentName("purge", int(k))): student_sample_steps(plan, int(k), s)
                for k, s in scope["students"].get("purge", {}).items()})
    return out
