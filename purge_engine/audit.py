"""Evidence of forgetting (DESIGN section 14): a per-sample membership test in which the sharded
ensemble audits itself, the most memorised samples, and the canary rates.

Membership, offline LiRA (Carlini et al., "Membership Inference Attacks From First Principles",
S&P 2022) with references that provably never saw the sample:
- a sample held by Teacher i is scored on Teacher i; the other teachers never trained on it;
- under a student method, the students that held the sample in their own data or learned from
  Teacher i (their labelling teachers include i) are its *exposed* students, each scored against the
  students that did neither (under PURGE N_s - 1 of them for a teacher-side sample; under the
  baseline none: every baseline student learned from every teacher).
The statistic is the scaled logit phi = log p_y - log(1 - p_y) of the sample's training label. Its
distribution on models that never saw the sample is a Gaussian with mean mu (the references' mean phi)
and a variance pooled over the test split, which no constituent saw: sigma^2 is the mean over test
samples of the variance of phi across the role's constituents (LiRA's fixed-variance form, stable
from one reference). With n references the target's phi minus mu has variance sigma^2 (1 + 1/n), so
z = (phi - mu) / (sigma sqrt(1 + 1/n)) and p = P(Z >= z): a small p says "this constituent is more
confident on the sample than models that never saw it are", i.e. it looks like a member.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from purge_engine.canaries import canary_ids, canary_rates, held_canaries
from purge_engine.constituents import side_of
from purge_engine.evaluate import test_set
from purge_engine.losses import role_loss, role_lr
from purge_engine.models import build_model
from purge_engine.rundir import records
from purge_engine.rundir.files import hash_ids
from purge_engine.rundir.outputs import EvalSet, OutputsCache
from purge_engine.seeding import seed_for
from purge_engine.training import predict_proba, train_slice_step

TINY = 1e-38  # float32's smallest normal: a probability below it counts as this, so phi stays finite
POOL_SET = "pool"  # outputs-cache set of the whole train pool (the memorisation ranking)
AUDITED_SET = "forgotten"  # outputs-cache set of the audited samples (shared with scoring.sample_sets)


# -- the statistic ------------------------------------------------------------------------------------
def scaled_logit(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """float64 (n,): log p_y - log(sum of the other classes' p) of softmax outputs (n, classes)."""
    p = probs.detach().double().cpu()
    y = labels.detach().cpu().view(-1, 1)
    own = p.gather(1, y).view(-1)
    others = p.sum(1) - own
    return (own.clamp_min(TINY).log() - others.clamp_min(TINY).log()).numpy()


def pooled_sigma(test_phi: np.ndarray) -> float | None:
    """sigma over the test split: sqrt of the mean across test samples of the variance across
    constituents of phi. test_phi: (k, n_test) for the k live constituents. None when k < 2."""
    if test_phi.shape[0] < 2 or test_phi.shape[1] == 0:
        return None
    return float(np.sqrt(test_phi.var(axis=0, ddof=1).mean()))


def member_test(phi: float, references: np.ndarray, sigma: float | None) -> tuple[float | None, float | None]:
    """(z, p) of one target phi against its references' phis (n,); (None, None) with no reference or sigma."""
    if references.size == 0 or not sigma:
        return None, None
    z = (phi - float(references.mean())) / (sigma * math.sqrt(1.0 + 1.0 / references.size))
    return z, 0.5 * math.erfc(z / math.sqrt(2.0))


# -- who is tested against whom ----------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One forgotten sample on one constituent that held it or learned from it, and its OUT references."""

    sample_id: int
    role: str  # "teacher" or a student method
    constituent: int
    via: str  # "data": it trained on the sample; "teacher": it learned from the teacher that did; or both
    teacher_id: int | None  # the teacher that held the sample (None: student-side only)
    references: tuple[int, ...]  # constituents of the same role that never saw the sample

    def to_dict(self) -> dict:
        return {**asdict(self), "references": list(self.references)}


def learned_from(plan, method: str, student_id: int) -> set[int]:
    """Teachers whose soft labels a student of `method` trained on (any chunk)."""
    return {t for c in range(plan.n_chunks(student_id)) for t in plan.labelling_teachers(method, student_id, c)}


def targets(plan, sample_ids, roles) -> list[Target]:
    """Every (sample, constituent) a membership test scores, from the plan that still holds the samples."""
    found = []
    for sample_id in sample_ids:
        where = plan.locate(int(sample_id))
        for role in roles:
            found += _role_targets(plan, int(sample_id), role, where["teacher"], where["student"])
    return found


def _role_targets(plan, sample_id: int, role: str, teacher: int | None, student: int | None) -> list[Target]:
    if side_of(role) == "teacher":
        if teacher is None:
            return []
        return [Target(sample_id, role, teacher, "data", teacher, _live(plan, "teacher", {teacher}))]
    exposed: dict[int, str] = {} if student is None else {student: "data"}
    for k in range(plan.n_students):
        if teacher is not None and teacher in learned_from(plan, role, k):
            exposed[k] = "data+teacher" if k in exposed else "teacher"
    references = _live(plan, "student", set(exposed))
    return [Target(sample_id, role, k, via, teacher, references) for k, via in sorted(exposed.items())]


def _live(plan, side: str, excluded: set[int]) -> tuple[int, ...]:
    n = plan.n_teachers if side == "teacher" else plan.n_students
    return tuple(c for c in range(n) if c not in excluded and not plan.is_empty(side, c))


# -- scoring a state of the run ------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleOutputs:
    """One role's softmax outputs: on the audited samples (per constituent (n, classes)), the pooled
    sigma from the test split, and the outputs of any extra reference models (extra_references)."""

    audited: list[torch.Tensor]
    sigma: float | None
    extra: tuple[torch.Tensor, ...] = ()


def role_outputs(run, role: str, inputs: torch.Tensor, ids_name: str) -> RoleOutputs:
    """Every constituent of `role` of `run` on `inputs` (named ids_name for the outputs cache) and on the
    test split (read from the cache while a constituent is unchanged)."""

    cache = OutputsCache(run)
    # the set the accuracy scoring around a request calls "forgotten" (the same ids, in the same order):
    # one cached forward pass serves both
    outputs = cache.role_outputs(role, [EvalSet(AUDITED_SET, inputs, ids_name), test_set(run.bundle)])
    cache.commit()
    return RoleOutputs(outputs[AUDITED_SET], _sigma(run, role, outputs["test"]))


def role_sigma(run, role: str) -> float | None:
    """The role's pooled sigma from its constituents' outputs on the test split (cached)."""

    cache = OutputsCache(run)
    test = cache.role_outputs(role, [test_set(run.bundle)])["test"]
    cache.commit()
    return _sigma(run, role, test)


def _sigma(run, role: str, test: list[torch.Tensor]) -> float | None:
    side = side_of(role)
    live = [c for c in range(len(test)) if not run.plan.is_empty(side, c)]
    if not live:
        return None
    return pooled_sigma(np.stack([scaled_logit(test[c], run.bundle.test_y) for c in live]))


def score_targets(found: list[Target], outputs: dict[str, RoleOutputs], positions: dict[int, int],
                  labels: torch.Tensor, replaced: dict | None = None) -> list[dict]:
    """{sample_id, role, constituent, z, p, phi, mu, references} per target. outputs: role ->
    RoleOutputs; positions: sample id -> row of the audited inputs; labels: their training labels.
    replaced: {(role, constituent): (n, classes) outputs} scored in place of a target's own (a
    contrast model), its references unchanged."""
    phis = {role: [scaled_logit(p, labels) for p in o.audited] for role, o in outputs.items()}
    rows = []
    for t in found:
        row = positions[t.sample_id]
        own = phis[t.role][t.constituent]
        if replaced and (t.role, t.constituent) in replaced:
            own = scaled_logit(replaced[(t.role, t.constituent)], labels)
        extra = [scaled_logit(e, labels)[row] for e in outputs[t.role].extra]
        refs = np.asarray([phis[t.role][c][row] for c in t.references] + extra, dtype=np.float64)
        z, p = member_test(float(own[row]), refs, outputs[t.role].sigma)
        rows.append({"sample_id": t.sample_id, "role": t.role, "constituent": t.constituent, "z": z, "p": p,
                     "phi": float(own[row]), "mu": float(refs.mean()) if refs.size else None,
                     "references": len(t.references), "extra_references": len(extra)})
    return rows


def audited_outputs(run, found: list[Target], inputs: torch.Tensor, sample_ids,
                    extra: dict | None = None) -> dict[str, RoleOutputs]:
    """role -> RoleOutputs of every role `found` tests, on the audited inputs (in sample_ids order), with
    the outputs of the extra reference models of its side (extra: side -> models)."""

    name = hash_ids(np.asarray(sample_ids, dtype=np.int64))
    outputs = {role: role_outputs(run, role, inputs, name) for role in sorted({t.role for t in found})}
    with run.threads_held(strict=False):
        return {role: RoleOutputs(o.audited, o.sigma, tuple(predict_proba(m, inputs)
                                                            for m in (extra or {}).get(side_of(role), [])))
                for role, o in outputs.items()}


def membership(run, found: list[Target], inputs: torch.Tensor, labels: torch.Tensor, sample_ids,
               extra: dict | None = None) -> dict:
    """The membership test of `found` on `run`'s current constituents. inputs/labels: the audited
    samples' train inputs and training labels, in the order of sample_ids (from the live data: a
    from-scratch reference's data no longer holds them). extra: side -> extra reference models."""
    outputs = audited_outputs(run, found, inputs, sample_ids, extra)
    positions = {int(i): r for r, i in enumerate(sample_ids)}
    return {"rows": score_targets(found, outputs, positions, labels),
            "sigma": {role: o.sigma for role, o in outputs.items()}}


def evidence(run, found: list[Target], sample_ids, roles, data=None, extra: dict | None = None) -> dict:
    """The membership test of `found` and the canary rates of every role, on run's current constituents.
    data: the bundle the audited inputs come from (default run's own; a from-scratch reference no
    longer holds the forgotten samples, so it is handed the live run's). extra: the extra reference
    models (extra_references; built here when None)."""

    data = data or run.bundle
    x, y = data.take(sample_ids)
    extra = extra_references(run, found, sample_ids) if extra is None else extra
    result = {"membership": membership(run, found, x, y, sample_ids, extra),
              "extra_references": {side: len(models) for side, models in extra.items()}}
    canaries = held_canaries(run.config, data)
    if canaries.size:
        cx, cy = data.take(canaries)
        result["canaries"] = canary_state(run, roles, cx, cy, hash_ids(canaries))
    return result


# -- extra references ----------------------------------------------------------------------------------------
MIN_REFERENCES = 3  # a target with fewer sibling references gets EXTRA_REFERENCES extra ones
EXTRA_REFERENCES = 3


def needs_extra(found: list[Target]) -> set[str]:
    """The sides ("teacher", "student") with a target that has fewer than MIN_REFERENCES siblings."""
    return {side_of(t.role) for t in found if len(t.references) < MIN_REFERENCES}


def extra_references(run, found: list[Target], sample_ids, count: int = EXTRA_REFERENCES) -> dict[str, list]:
    """side -> `count` extra reference models for the sides whose targets have too few siblings. Each is
    the side's architecture from its own seeded init, trained on seeded data that holds none of the
    audited samples (nor anything forgotten before): a teacher on a random teacher-shard-sized draw of the
    teachers' samples with their labels; a student on a student-shard-sized draw of the students' samples,
    distilled from the teachers that hold none of the audited samples (the same loss and temperature as
    the run's students). Deterministic in (seed, side, index), so the from-scratch reference rebuilds the
    very same models. No side gets extras when every teacher held an audited sample."""
    sides = needs_extra(found)
    excluded = np.asarray(sorted({int(i) for i in sample_ids}), dtype=np.int64)
    holders = {t.teacher_id for t in found if t.teacher_id is not None}  # from the plan that held the samples
    clean = [t for t in range(run.plan.n_teachers) if t not in holders and not run.plan.is_empty("teacher", t)]
    if "student" in sides and not clean:
        sides.discard("student")
    with run.threads_held():
        return {side: [_extra_model(run, side, j, excluded, clean) for j in range(count)] for side in sorted(sides)}


def _extra_model(run, side: str, index: int, excluded: np.ndarray, clean: list[int]) -> torch.nn.Module:
    plan, config = run.plan, run.config
    teacher = side == "teacher"
    pool = np.setdiff1d(plan.all_teacher_samples() if teacher else plan.all_student_samples(), excluded)
    size = min(pool.size, -(-pool.size // (plan.n_teachers if teacher else plan.n_students)))
    ids = np.sort(np.random.default_rng(seed_for(config.seed, "extra-reference-data", teacher, index))
                  .choice(pool, size, replace=False))
    arch = config.teacher_arch if teacher else config.student_arch
    model = run._laid_out(build_model(arch, run.bundle.spec, seed_for(config.seed, "extra-reference-init",
                                                                       teacher, index))).to(run.device)
    x, y = run.inputs(ids), run.bundle.train_y[run.bundle.rows(ids)]
    role = "teacher" if teacher else "purge"  # every student method trains with the one student loss
    if teacher:
        targets = (y,)
    else:
        soft = torch.stack([predict_proba(run.teacher_for_labels(t), x, config.temperature) for t in clean]).mean(0)
        targets = (soft, y)
    train_slice_step(model, x, targets, role_loss(role, config), config.epochs, config.batch_size,
                     role_lr(role, config), (config.seed, "extra-reference", int(teacher), index))
    return model.eval()


# -- canaries ----------------------------------------------------------------------------------------------
def canary_state(run, roles, inputs: torch.Tensor, planted: torch.Tensor, ids_name: str) -> dict:
    """role -> per constituent the share of canaries it predicts with the planted label (canaries.py)."""

    cache, rates = OutputsCache(run), {}
    for role in roles:
        probs = cache.role_outputs(role, [EvalSet("canaries", inputs, ids_name)])["canaries"]
        rates[role] = canary_rates(probs, planted)
    cache.commit()
    return rates


# -- the most memorised samples --------------------------------------------------------------------------
def memorisation(run, role: str = "teacher") -> dict:
    """Every sample the role's constituents hold in their own data, scored on its holder against the
    constituents of the role that never saw it (as `targets`): {"sample_id", "constituent", "z", "p"},
    arrays sorted most memorised first (largest z). Forgotten samples are left out."""

    plan, side = run.plan, side_of(role)
    where = plan.locations()
    holder = where["teacher"] if side == "teacher" else where["student"]
    ids = np.flatnonzero(holder >= 0).astype(np.int64)
    x, y = run.bundle.take(ids)
    cache = OutputsCache(run)
    probs = cache.role_outputs(role, [EvalSet(f"{POOL_SET}-{side}", x, hash_ids(ids))])
    cache.commit()
    phi = np.stack([scaled_logit(p, y) for p in probs[f"{POOL_SET}-{side}"]])  # (k, n)
    out = _outside(plan, role, ids, holder[ids], where["teacher"][ids])  # (k, n) True: never saw the sample
    counts = out.sum(0)
    mu = np.where(counts > 0, (phi * out).sum(0) / np.maximum(counts, 1), np.nan)
    sigma = role_sigma(run, role)
    own = phi[holder[ids], np.arange(ids.size)]
    z = (own - mu) / ((sigma or np.nan) * np.sqrt(1.0 + 1.0 / np.maximum(counts, 1)))
    z = np.where(counts > 0, z, np.nan)
    p = 0.5 * np.vectorize(math.erfc)(z / math.sqrt(2.0)) if ids.size else np.zeros(0)
    order = np.argsort(-np.nan_to_num(z, nan=-np.inf), kind="stable")
    return {"sample_id": ids[order], "constituent": holder[ids][order], "z": z[order], "p": p[order],
            "references": counts[order]}


def _outside(plan, role: str, ids: np.ndarray, holders: np.ndarray, teachers: np.ndarray) -> np.ndarray:
    """(k, n) bool: constituent c of `role` never saw sample ids[j] (neither held it nor learned from its teacher)."""
    side = side_of(role)
    k = plan.n_teachers if side == "teacher" else plan.n_students
    out = np.ones((k, ids.size), dtype=bool)
    out[holders, np.arange(ids.size)] = False
    for c in range(k):
        if plan.is_empty(side, c):
            out[c] = False
        elif side == "student":
            exposed = np.isin(teachers, list(learned_from(plan, role, c)))
            out[c] &= ~exposed
    return out


# -- a request's evidence, as `audit` reports it ------------------------------------------------------------
def report(run, request_id: int | None = None, top: int = 10) -> dict:
    """Everything the ledger holds on one request's evidence (the latest request by default), merged:
    per target the p-values before, after and on the from-scratch reference (None until verified),
    the canary rates, the approximate contrast's series, and the `top` most memorised samples now."""
    record = run.ledger.record(_request_or_latest(run, request_id))
    membership = _membership_rows(record)
    result = {"request_id": record[records.REQUEST_ID], "samples": record[records.SAMPLE_IDS], "membership": membership,
              "verified": records.EXACT in record, "exact": record.get(records.EXACT),
              "canary": _canary_table(record), "canary_ids": _canary_ids(run),
              "canary_cost": _canary_cost(record), "contrast": _contrast(record),
              "most_memorised": _top(memorisation(run), top) if top else []}
    if not record.get(records.EVIDENCE_TARGETS):
        result["note"] = ("this request was served without scoring or without evidence (score=False, "
                          "evidence=False, forget --no-evidence): no evidence was recorded")
    return result


def _request_or_latest(run, request_id: int | None) -> int:
    if request_id is not None:
        return int(request_id)
    latest = run.latest_request()
    if latest is None:
        raise ValueError("request: this run has served no forget request yet; nothing to audit")
    return latest


def _membership_rows(record: dict) -> list[dict]:
    states = {"before": record.get("evidence_before"), "after": record.get("evidence_after"),
              "reference": record.get("evidence_reference")}
    rows = []
    for i, target in enumerate(record.get(records.EVIDENCE_TARGETS, [])):
        row = {"sample_id": target["sample_id"], "role": target["role"], "constituent": target["constituent"],
               "via": target["via"], "teacher_id": target["teacher_id"], "references": len(target["references"]),
               "reference_constituents": target["references"], "extra_references": 0}
        for state, evidence in states.items():
            scored = (evidence or {}).get("membership", {}).get("rows", [])
            row[f"p_{state}"] = scored[i]["p"] if i < len(scored) else None
            row[f"z_{state}"] = scored[i]["z"] if i < len(scored) else None
            if i < len(scored):
                row["extra_references"] = scored[i].get("extra_references", 0)
        rows.append(row)
    return rows


def _canary_table(record: dict) -> dict:
    """role -> constituent (str) -> {before, after, teacher_only, reference} canary rates in [0, 1]."""
    before = (record.get("evidence_before") or {}).get("canaries") or {}
    after = (record.get("evidence_after") or {}).get("canaries") or {}
    reference = (record.get("evidence_reference") or {}).get("canaries") or {}
    table: dict = {}
    for role, rates in before.items():
        table[role] = {}
        for c, rate in enumerate(rates):
            after_rate = after.get(role, [None] * len(rates))[c]
            table[role][str(c)] = {"before": rate, "after": after_rate,
                                   # teacher only: the teachers retrained, every student kept as it was
                                   "teacher_only": after_rate if role == "teacher" else rate,
                                   "reference": reference[role][c] if role in reference else None}
    return table


def _canary_ids(run) -> list[int]:
    return canary_ids(run.config, run.bundle.id_space or run.bundle.n_train).tolist()


def _canary_cost(record: dict) -> dict:
    """Sample-steps of the three ways to forget: teacher only, PURGE, the baseline (students only, and
    the teacher retraining each of them also pays, shown on its own)."""
    predicted = record.get(records.PREDICTED, {})
    teacher = predicted.get("teacher", {}).get("sample_steps")
    return {"teacher": teacher, "teacher_only": {"teacher": teacher, "students": 0},
            **{m: {"teacher": teacher, "students": predicted[m]["sample_steps"]}
               for m in ("purge", "baseline") if m in predicted}}


def _contrast(record: dict) -> dict | None:
    measured = record.get(records.CONTRAST)
    if not measured:
        return None
    series = {**measured["series"], "reference": record.get("contrast_reference")}
    return {"method": measured["method"], "constituents": measured["constituents"], "rows": measured["rows"],
            "budget_sample_steps": measured["budget_sample_steps"],
            "spent_sample_steps": measured["spent_sample_steps"],
            "relearning": {name: (s or {}).get("relearning") for name, s in series.items()},
            "quantisation": {name: (s or {}).get("quantisation") for name, s in series.items()}}


def _top(scores: dict, top: int) -> list[dict]:
    return [{"sample_id": int(scores["sample_id"][i]), "constituent": int(scores["constituent"][i]),
             "z": _finite(scores["z"][i]), "p": _finite(scores["p"][i]), "references": int(scores["references"][i])}
            for i in range(min(top, len(scores["sample_id"])))]


def _finite(value) -> float | None:
    return float(value) if np.isfinite(value) else None
