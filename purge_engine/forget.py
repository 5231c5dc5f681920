"""What a forget request reports: the ForgetReport, and the parameter comparison behind the
exactness verdict (sections 5-6). Accuracy and the membership check live in scoring.py; they are
re-exported here for code that imports them from this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from purge_engine.evaluate import accuracy_of
from purge_engine.scoring import RETAINED_SAMPLE, SampleSets, membership_check, sample_losses, sample_sets

__all__ = ["ForgetReport", "compare_parameters", "accuracy_of", "RETAINED_SAMPLE", "SampleSets",
           "membership_check", "sample_losses", "sample_sets"]


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
    membership: dict = field(default_factory=dict)  # {"before"|"after": {role: scoring.membership_check()}}
    hashes: dict = field(default_factory=dict)  # {"before"|"after": {"role-id": param hash}}
    full_retrain: dict | None = None
    verification: dict | None = None
    resumed: bool = False  # finished after a crash, on reopening the run
    work: dict = field(default_factory=dict)  # role -> sample_steps, label_forwards read back from what it wrote
    cost_matches_prediction: bool | None = None  # work == predicted, for every role (section 7)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_parameters(live: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict:
    """Bitwise comparison of two state dicts (torch.equal per tensor) with the largest |difference|."""
    if live.keys() != reference.keys():
        return {"equal": False, "parameters": 0, "tensors": 0, "max_abs_diff": float("inf")}
    equal = all(torch.equal(live[k], reference[k]) for k in live)
    diff = max((float((live[k].double() - reference[k].double()).abs().max()) for k in live if live[k].numel()),
               default=0.0)
    return {"equal": equal, "parameters": int(sum(t.numel() for t in live.values())), "tensors": len(live),
            "max_abs_diff": diff}
