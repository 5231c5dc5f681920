"""What a forget request will do and did, as tables and sentences for the Forget page: pure, no st.* calls.

The scope in words, accuracy and the membership check before and after, the advantage headline
(retrained share per method and PURGE's advantage, advantage.py's one definition) and the
with/without view (which constituents changed, which are bit-identical, how each one's predictions
moved, the from-scratch reference beside them). Built from engine output and a ledger record
(`Ledger.record`: started, done and verified bodies merged).
"""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pandas as pd

from dashboard.shared import cost
from purge_engine import METHODS, ConstituentName, constituent_label, title


# -- the selection ---------------------------------------------------------------------------------
def id_list(sample_ids, limit: int = 30) -> str:
    """[3, 17, 42] -> "#3, #17, #42"; past `limit` ids, "… (+n more)"."""
    ids = [f"#{int(i)}" for i in sample_ids]
    more = f" … (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def available_samples(plan) -> np.ndarray:
    """Sample ids that can still be forgotten: in some teacher or student shard, not forgotten yet."""
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    return np.setdiff1d(used, np.fromiter(plan.forgotten, dtype=np.int64, count=len(plan.forgotten)))


# -- a forget request's results (from its ledger record) ----------------------------------------------
def scope_summary(describe: dict, scope: dict, methods) -> list[str]:
    """Sentences saying what a request retrains, from RetrainScope.to_dict()."""
    r = describe["student_slices"]
    teachers = scope["teachers"]
    lines = [("Teachers: " + ", ".join(f"Teacher {int(t) + 1} from step {s + 1}" for t, s in teachers.items()))
             if teachers else "Teachers: none (no selected sample is in a teacher shard)."]
    for method in methods:
        students = scope["students"][method]
        parts = [f"Student {int(k) + 1} from step {s + 1} (chunk {s // r + 1})" for k, s in students.items()]
        kept = describe["n_students"] - len(students)
        lines.append(f"{title(method)}: " + (", ".join(parts) if parts else "no student") +
                     f" · {kept} of {describe['n_students']} kept untouched")
    return lines


ACCURACY_SETS = (("test", "Test"), ("retained", "Retained train"), ("forgotten", "Forgotten"))


def accuracy_table(record: dict) -> pd.DataFrame:
    """Accuracy (%) before and after on the test split, retained train samples and the forgotten ones."""
    before, after = record["accuracy_before"], record.get("accuracy_after", {})
    rows = []
    for role in before:
        row = {"Model": title(role)}
        for key, name in ACCURACY_SETS:
            row[f"{name} before"] = _percent(before[role].get(key))
            row[f"{name} after"] = _percent(after.get(role, {}).get(key))
        rows.append(row)
    return pd.DataFrame(rows)


MEMBERSHIP_ROLES = ("teacher", *METHODS)


def membership_roles(record: dict) -> list[str]:
    """The roles of a record's membership check, teacher first, then the student methods in order."""
    before = record.get("membership_before", {})
    return [r for r in MEMBERSHIP_ROLES if r in before] + [r for r in before if r not in MEMBERSHIP_ROLES]


def membership_table(record: dict) -> pd.DataFrame:
    """The loss-threshold attack (scoring.membership_check) per role, before and after: its ROC AUC with
    the 95 % bootstrap interval (text, 0.5 = chance), the forgotten samples' mean loss percentile among
    test losses (0-100), and the rates (%) at which it calls forgotten, test and member samples members."""
    before, after = record["membership_before"], record.get("membership_after", {})
    rows = []
    for role in membership_roles(record):
        now = after.get(role, {})
        rows.append({"Model": title(role),
                     "Attack AUC before": auc_text(before[role]), "Attack AUC after": auc_text(now),
                     "Forgotten: loss percentile before": _round(before[role].get("forgotten_percentile")),
                     "Forgotten: loss percentile after": _round(now.get("forgotten_percentile")),
                     "Forgotten: member rate before": _percent(before[role].get("forgotten_member_rate")),
                     "Forgotten: member rate after": _percent(now.get("forgotten_member_rate")),
                     "Test samples: member rate": _percent((now or before[role]).get("test_member_rate")),
                     "Members: member rate": _percent((now or before[role]).get("member_rate"))})
    return pd.DataFrame(rows)


def auc_text(check: dict) -> str:
    """"0.63 (0.58–0.67)": the attack's AUC and its 95 % interval; "–" when not recorded."""
    if check.get("auc") is None:
        return "–"
    if check.get("auc_low") is None:
        return f"{check['auc']:.2f}"
    return f"{check['auc']:.2f} ({check['auc_low']:.2f}–{check['auc_high']:.2f})"


def _round(value) -> float | None:
    return None if value is None else round(value, 1)


# -- the advantage headline and the with/without view ------------------------------------------------
HASH_CHARS = 10  # of a parameter hash, enough to tell two apart on screen
BIT_IDENTICAL, RETRAINED = "bit-identical", "retrained"


def advantage_headline(predicted: dict, training: dict) -> list[dict]:
    """Metrics for a headline: the share of its own from-scratch training each method retrains on this
    request, then PURGE's advantage (cost.advantage_metric: the ratio of the PURGE and baseline students'
    rows of the table drawn under it). predicted: plan.predicted_cost cut to that table's rows (cost.drawn);
    training: plan.training_cost. Each: {"label", "value", "help"}."""
    def share(role: str) -> str:
        if role not in predicted:
            return "not run"
        total = training[role]["sample_steps"]
        return f"{predicted[role]['sample_steps'] / total if total else 0.0:.0%}"

    metric = cost.advantage_metric(predicted)
    return [
        {"label": "PURGE retrains", "value": share("purge"),
         "help": "of the PURGE students' training, in sample-steps (samples x epochs)"},
        {"label": "Baseline (SISA) retrains", "value": share("baseline"),
         "help": "of the baseline students' training: each of its labels came from the whole ensemble"},
        {"label": "Full retrain", "value": "100%", "help": "every teacher and every student from scratch"},
        {**metric, "help": f"{metric['help']} Here the teachers retrain {share('teacher')} of their training."},
    ]


def before_after_frame(record: dict) -> pd.DataFrame:
    """One row per constituent: changed or bit-identical (parameter hash before and after), its test
    accuracy and its probability of each forgotten sample's true label before and after, and, once
    verified, whether it equals the from-scratch reference's hash."""
    before, after = record.get("hashes_before", {}), record.get("hashes_after", {})
    outputs_before, outputs_after = record.get("outputs_before", {}), record.get("outputs_after", {})
    reference = {str(ConstituentName(d["role"], d["constituent"])): d.get("reference_hash")
                 for d in record.get("details", [])}
    rows = []
    for key in before:
        role, c = astuple(ConstituentName.parse(key))
        was, now = outputs_before.get(key, {}), outputs_after.get(key, {})
        rows.append({
            "Model": constituent_label(role, c),
            "Role": title(role, "short"),
            "Parameters": BIT_IDENTICAL if before[key] == after.get(key) else RETRAINED,
            "Hash before": before[key][:HASH_CHARS],
            "Hash after": (after.get(key) or "")[:HASH_CHARS],
            "Test accuracy before": _percent(was.get("test")),
            "Test accuracy after": _percent(now.get("test")),
            "P(true label) of forgotten, before": _mean_percent(was.get("forgotten_true_probability")),
            "P(true label) of forgotten, after": _mean_percent(now.get("forgotten_true_probability")),
            "Equals from-scratch reference": (None if key not in reference
                                              else reference[key] == after.get(key)),
        })
    return pd.DataFrame(rows)


def change_summary(frame: pd.DataFrame) -> str:
    """"3 of 20 constituents retrained; 17 bit-identical to before the request"."""
    if frame.empty:
        return "No constituent was compared."
    changed = int((frame["Parameters"] == RETRAINED).sum())
    return (f"{changed} of {len(frame)} constituents retrained; {len(frame) - changed} bit-identical to before "
            "the request (same parameter hash)")


def _percent(value) -> float | None:
    return None if value is None else round(100 * float(value), 1)


def _mean_percent(values) -> float | None:
    return None if not values else round(100 * sum(values) / len(values), 1)
