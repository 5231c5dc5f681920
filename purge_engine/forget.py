"""What a forget request measures around the retraining: accuracy on the three sample sets, the
membership check, and the parameter comparison behind the exactness verdict (sections 5-7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from purge_engine.seeding import seed_for

RETAINED_SAMPLE = 1000  # retained train samples scored before and after (seeded subsample)


@dataclass
class ForgetReport:
    request_id: int
    sample_ids: list[int]
    methods: list[str]
    scope: dict  # RetrainScope.to_dict()
    predicted: dict  # plan.predicted_cost(): sample-steps and label passes per role/method
    cost: dict = field(default_factory=dict)  # measured: role -> Cost.to_dict()
    retrained: dict = field(default_factory=dict)  # role -> {constituent: first step retrained}
    reused: dict = field(default_factory=dict)  # role -> constituents left untouched
    accuracy: dict = field(default_factory=dict)  # {"before"|"after": {role: {"test", "retained", "forgotten"}}}
    membership: dict = field(default_factory=dict)  # {"before"|"after": {role: membership_check()}}
    hashes: dict = field(default_factory=dict)  # {"before"|"after": {"role-id": param hash}}
    full_retrain: dict | None = None
    verification: dict | None = None
    resumed: bool = False  # finished after a crash, on reopening the run

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SampleSets:
    """Inputs and labels of the three sets a request is scored on."""

    sets: dict[str, tuple[torch.Tensor, torch.Tensor]]


def sample_sets(bundle, plan, forgotten: list[int], seed: int) -> SampleSets:
    """test split; a seeded subsample of retained train samples; the forgotten samples."""
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    retained = np.setdiff1d(used, np.asarray(forgotten + sorted(plan.forgotten), dtype=np.int64))
    rng = np.random.default_rng(seed_for(seed, "retained-sample"))
    if retained.size > RETAINED_SAMPLE:
        retained = np.sort(rng.choice(retained, RETAINED_SAMPLE, replace=False))

    def pick(ids) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=bundle.train_x.device)
        return bundle.train_x[index], bundle.train_y[index]

    return SampleSets({"test": (bundle.test_x, bundle.test_y), "retained": pick(retained),
                       "forgotten": pick(forgotten)})


def accuracy_of(probs: torch.Tensor, labels: torch.Tensor) -> float | None:
    if labels.numel() == 0:
        return None
    return float((probs.argmax(1) == labels).float().mean())


def sample_losses(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(torch.log(probs.clamp_min(1e-12)), labels, reduction="none")


def membership_check(losses: dict[str, torch.Tensor]) -> dict:
    """Loss-threshold membership inference (Yeom et al., 2018): a sample whose loss is at most the
    mean loss on retained training samples is guessed a member. Reported for the forgotten samples
    beside held-out test samples: once a sample is truly forgotten its rate should look like the
    test rate, not the retained one."""
    threshold = float(losses["retained"].mean())

    def rate(values: torch.Tensor) -> float | None:
        return float((values <= threshold).float().mean()) if values.numel() else None

    def mean(values: torch.Tensor) -> float | None:
        return float(values.mean()) if values.numel() else None

    return {"threshold": threshold,
            **{f"{name}_member_rate": rate(values) for name, values in losses.items()},
            **{f"{name}_mean_loss": mean(values) for name, values in losses.items()}}


def compare_parameters(live: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict:
    """Bitwise comparison of two state dicts (torch.equal per tensor) with the largest |difference|."""
    if live.keys() != reference.keys():
        return {"equal": False, "parameters": 0, "tensors": 0, "max_abs_diff": float("inf")}
    equal = all(torch.equal(live[k], reference[k]) for k in live)
    diff = max((float((live[k].double() - reference[k].double()).abs().max()) for k in live if live[k].numel()),
               default=0.0)
    return {"equal": equal, "parameters": int(sum(t.numel() for t in live.values())), "tensors": len(live),
            "max_abs_diff": diff}
