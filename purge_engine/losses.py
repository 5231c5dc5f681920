"""The one definition of what a role minimises, read by the slice-step loop and by the lanes alike.

A teacher minimises cross-entropy on the true labels; a student the KL divergence to its soft labels
at temperature T, scaled by T^2 (Hinton et al.), mixed with cross-entropy by alpha (DESIGN section
4.7). The loop reduces a batch with torch's own batch means (`mean`); the lanes need one loss per
sample to mask padded rows (`per_sample`). Both read the same formula, so a change to one is a change
to both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RoleLoss:
    """A role's loss: cross-entropy (a teacher: `distilled` False) or distillation at T mixed by alpha."""

    distilled: bool
    temperature: float = 1.0
    alpha: float = 0.0

    def mean(self, logits: torch.Tensor, *targets: torch.Tensor) -> torch.Tensor:
        """The batch's loss from (B, classes) logits: targets (labels,) or (soft labels, labels)."""
        if not self.distilled:
            return F.cross_entropy(logits, targets[0])
        soft, labels = targets
        kl = F.kl_div(F.log_softmax(logits / self.temperature, dim=1), soft, reduction="batchmean")
        return self._mix(kl * self.temperature**2, lambda: F.cross_entropy(logits, labels))

    def per_sample(self, logits: torch.Tensor, targets: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """(W, B) losses from (W, B, classes) logits, one per sample of each lane."""
        def cross_entropy(labels):
            return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape)

        if not self.distilled:
            return cross_entropy(targets[0])
        soft, labels = targets
        kl = F.kl_div(F.log_softmax(logits / self.temperature, dim=-1), soft, reduction="none").sum(-1)
        return self._mix(kl * self.temperature**2, lambda: cross_entropy(labels))

    def __call__(self, logits: torch.Tensor, *targets: torch.Tensor) -> torch.Tensor:
        return self.mean(logits, *targets)

    def _mix(self, kl: torch.Tensor, cross_entropy) -> torch.Tensor:
        return kl if self.alpha == 0 else (1 - self.alpha) * kl + self.alpha * cross_entropy()


TEACHER_LOSS = RoleLoss(distilled=False)


def role_loss(role: str, config) -> RoleLoss:
    """The loss a role trains with under a config ("teacher" or any student method)."""
    return TEACHER_LOSS if role == "teacher" else RoleLoss(True, config.temperature, config.alpha)


def role_lr(role: str, config) -> float:
    return config.teacher_lr if role == "teacher" else config.student_lr
