"""What a forget request scores before and after the retraining (DESIGN section 7): accuracy on
three sample sets, and an illustrative membership check.

The membership check is a loss-threshold membership-inference attack (Yeom et al., "Privacy Risk
in Machine Learning", CSF 2018): the lower a sample's loss under the ensemble, the likelier the
attack thinks the ensemble trained on it. Members are a seeded subsample of the samples the role
itself trained on (the teacher ensemble: the teacher shards; a student method: the student
shards), forgotten samples excluded; non-members are the test split. It is an illustration of
what forgetting looks like to one weak attacker, not a proof of forgetting: the proof is the
bitwise comparison with a from-scratch run (verify).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from purge_engine.evaluate import accuracy_of, ensemble_predict, live_probs, mean_softmax
from purge_engine.plan import METHODS
from purge_engine.rundir.files import hash_ids
from purge_engine.rundir.names import ConstituentName
from purge_engine.rundir.outputs import EvalSet, OutputsCache
from purge_engine.seeding import seed_for

RETAINED_SAMPLE = 1000  # retained train samples scored before and after (seeded subsample)
MEMBER_SAMPLE = 1000  # members per role in the membership check (seeded subsample)
BOOTSTRAP_RESAMPLES = 200  # resamples behind the AUC interval
INTERVAL = (2.5, 97.5)  # percentiles of the bootstrap AUCs: a 95 % interval
LOSS_QUANTILES = 101  # test-loss quantiles kept for the figure: 0 %, 1 %, ..., 100 %
ATTACK = "an illustrative loss-threshold attack, not a proof of forgetting"
ROLES = ("teacher", *METHODS)


@dataclass(frozen=True)
class SampleSets:
    """Inputs and labels of the sets a request is scored on, by name, and what names each set's
    samples (the hash of its ids; the test split: its size) for the outputs cache."""

    sets: dict[str, tuple[torch.Tensor, torch.Tensor]]
    ids: dict[str, str]

    def eval_sets(self) -> list:
        return [EvalSet(name, x, self.ids[name]) for name, (x, _) in self.sets.items()]


# -- which samples -------------------------------------------------------------------------------
def _subsample(ids: np.ndarray, forgotten: list[int], plan, limit: int, seed: int) -> np.ndarray:
    """Sorted unique ids, forgotten ones (this request's and earlier ones) removed, at most `limit` (seeded)."""
    ids = np.setdiff1d(ids, np.asarray(list(forgotten) + sorted(plan.forgotten), dtype=np.int64))
    if ids.size > limit:
        ids = np.sort(np.random.default_rng(seed).choice(ids, limit, replace=False))
    return ids


def retained_ids(plan, forgotten: list[int], seed: int) -> np.ndarray:
    """int64 (<= RETAINED_SAMPLE,): train samples any role still trains on."""
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    return _subsample(used, forgotten, plan, RETAINED_SAMPLE, seed_for(seed, "retained-sample"))


def member_ids(plan, role: str, forgotten: list[int], seed: int) -> np.ndarray:
    """int64 (<= MEMBER_SAMPLE,): samples `role` trained on, forgotten ones excluded. The same set
    before and after a request (the plan then has lost exactly the excluded ids)."""
    own = plan.all_teacher_samples() if role == "teacher" else plan.all_student_samples()
    return _subsample(own, forgotten, plan, MEMBER_SAMPLE, seed_for(seed, "membership", ROLES.index(role)))


def sample_sets(bundle, plan, forgotten: list[int], seed: int, role: str | None = None) -> SampleSets:
    """"test" split, a seeded subsample of "retained" train samples, the "forgotten" samples; with a
    role, also that role's "members" (member_ids)."""
    chosen = {"retained": retained_ids(plan, forgotten, seed), "forgotten": np.asarray(forgotten, dtype=np.int64)}
    if role is not None:
        chosen["members"] = member_ids(plan, role, forgotten, seed)
    sets = {"test": (bundle.test_x, bundle.test_y), **{name: bundle.take(ids) for name, ids in chosen.items()}}
    names = {"test": f"test-{bundle.test_x.shape[0]}", **{name: hash_ids(ids) for name, ids in chosen.items()}}
    return SampleSets(sets, names)


# -- the attack's statistics ---------------------------------------------------------------------
def sample_losses(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(n,) cross-entropy in nats of softmax outputs probs (n, classes) against labels (n,)."""
    return F.nll_loss(torch.log(probs.clamp_min(1e-12)), labels, reduction="none")


def below_fraction(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(len(values),) for each value, the fraction of `reference` strictly below it plus half the
    fraction equal to it (ties count half), in [0, 1]. reference must be non-empty."""
    ordered = np.sort(reference)
    left, right = np.searchsorted(ordered, values, "left"), np.searchsorted(ordered, values, "right")
    return (left + right) / (2.0 * ordered.size)


def roc_auc(member_losses: np.ndarray, non_member_losses: np.ndarray) -> float | None:
    """ROC AUC of the score "lower loss => member": the probability that a random member has a lower
    loss than a random non-member, ties counted half (the Mann-Whitney statistic, exact). None when
    either set is empty; 0.5 is chance."""
    if member_losses.size == 0 or non_member_losses.size == 0:
        return None
    return float(1.0 - below_fraction(member_losses, non_member_losses).mean())


def bootstrap_auc(member_losses: np.ndarray, non_member_losses: np.ndarray, seed: int,
                  resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float | None, float | None]:
    """(low, high): the INTERVAL percentiles of roc_auc over seeded resamples, members and
    non-members each drawn with replacement at their own size."""
    if member_losses.size == 0 or non_member_losses.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    aucs = [roc_auc(rng.choice(member_losses, member_losses.size), rng.choice(non_member_losses,
                                                                              non_member_losses.size))
            for _ in range(resamples)]
    low, high = np.percentile(aucs, INTERVAL)
    return float(low), float(high)


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _rate(values: np.ndarray, threshold: float | None) -> float | None:
    """Fraction of values the attack calls "member" (loss <= threshold)."""
    return float((values <= threshold).mean()) if values.size and threshold is not None else None


def membership_check(members: torch.Tensor, non_members: torch.Tensor, forgotten: torch.Tensor,
                     seed: int) -> dict:
    """The loss-threshold attack on per-sample losses (nats) of members, non-members (the test
    split) and the forgotten samples. Threshold: the mean member loss (Yeom et al.). A forgotten
    sample's percentile is where its loss falls among the non-member losses (0-100, ties half):
    near 0 it looks like a member, spread like a test sample's it looks unseen."""
    m, t, f = (v.detach().cpu().double().numpy() for v in (members, non_members, forgotten))
    threshold = _mean(m)
    percentiles = 100.0 * below_fraction(f, t) if t.size else np.zeros(0)
    low, high = bootstrap_auc(m, t, seed)
    return {"auc": roc_auc(m, t), "auc_low": low, "auc_high": high, "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
            "member_count": int(m.size), "test_count": int(t.size), "threshold": threshold,
            "member_rate": _rate(m, threshold), "test_member_rate": _rate(t, threshold),
            "forgotten_member_rate": _rate(f, threshold),
            "member_mean_loss": _mean(m), "test_mean_loss": _mean(t), "forgotten_mean_loss": _mean(f),
            "forgotten_percentile": _mean(percentiles),
            "forgotten_percentiles": percentiles.tolist(), "forgotten_losses": f.tolist(),
            "test_loss_quantiles": np.quantile(t, np.linspace(0, 1, LOSS_QUANTILES)).tolist() if t.size else []}


# -- one role, every set ---------------------------------------------------------------------------
def score_role(probs: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], aggregation: str, seed: int,
               role: str) -> tuple[dict, dict]:
    """probs: set name -> (k, n, classes) softmax of the role's non-empty constituents; labels: set
    name -> (n,), for the sets of sample_sets(..., role). Returns ({set: accuracy} for test,
    retained, forgotten by the run's aggregation; membership_check)."""
    accuracy = {name: accuracy_of(ensemble_predict(p, aggregation), labels[name])
                for name, p in probs.items() if name != "members"}
    losses = {name: sample_losses(mean_softmax(p), labels[name]) for name, p in probs.items()}
    bootstrap_seed = seed_for(seed, "membership-bootstrap", ROLES.index(role))
    return accuracy, membership_check(losses["members"], losses["test"], losses["forgotten"], bootstrap_seed)


def score(run, roles, forgotten: list[int], constituents: dict | None = None) -> tuple[dict, dict]:
    """Accuracy on test / retained / forgotten samples (by the run's aggregation, as evaluate) and
    the membership check on the role's own training samples, per role. Each constituent's outputs
    on each set come from the outputs cache while its checkpoint is unchanged (outputs.py).
    constituents: a dict filled, when given, with what each constituent itself predicts
    ("role-c" -> constituent_outputs), from the same outputs."""

    accuracy, membership, cache = {}, {}, OutputsCache(run)
    for role in roles:
        chosen = sample_sets(run.bundle, run.plan, forgotten, run.config.seed, role)
        every = cache.role_outputs(role, chosen.eval_sets())  # set -> per constituent (n, classes)
        labels = {name: y for name, (_, y) in chosen.sets.items()}
        accuracy[role], membership[role] = score_role(
            {name: live_probs(run, every[name], role) for name in chosen.sets}, labels,
            run.config.aggregation, run.config.seed, role)
        if constituents is not None:
            for c, (test, gone) in enumerate(zip(every["test"], every["forgotten"], strict=True)):
                owner = str(ConstituentName(role, c))
                constituents[owner] = constituent_outputs(test, labels["test"], gone, labels["forgotten"])
    cache.commit()
    return accuracy, membership


def constituent_outputs(test: torch.Tensor, test_y: torch.Tensor, forgotten: torch.Tensor,
                        forgotten_y: torch.Tensor) -> dict:
    """One constituent's softmax on the test set (n, classes) and on the forgotten samples (k, classes):
    its test accuracy, and per forgotten sample the class it predicts and its probability of the
    sample's true label (what "it no longer remembers the sample" can look like, or not)."""
    true = forgotten.gather(1, forgotten_y.view(-1, 1)).view(-1) if forgotten.shape[0] else forgotten.new_zeros(0)
    return {"test": accuracy_of(test.argmax(dim=1), test_y),
            "forgotten_predicted": forgotten.argmax(dim=1).tolist() if forgotten.shape[0] else [],
            "forgotten_true_probability": [float(v) for v in true]}
