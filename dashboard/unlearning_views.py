"""What a forget request did, for the Forget and Compare pages: the advantage headline (retrained
share per method and PURGE's advantage, advantage.py's one definition) and the with/without view
(which constituents changed, which are bit-identical, how each one's predictions moved, the
from-scratch reference beside them). Pure pandas: built from a ledger record
(`Ledger.record`: started, done and verified bodies merged), no Streamlit.
"""

from __future__ import annotations

import pandas as pd

from purge_engine.advantage import advantage
from purge_engine.vocabulary import constituent_label, title

HASH_CHARS = 10  # of a parameter hash, enough to tell two apart on screen
BIT_IDENTICAL, RETRAINED = "bit-identical", "retrained"


def advantage_headline(predicted: dict, training: dict) -> list[dict]:
    """Metrics for a headline: the share of its own from-scratch training each method retrains on this
    request (`predicted`: plan.predicted_cost; `training`: plan.training_cost), then PURGE's advantage.
    Each: {"label", "value", "help"}."""
    def share(role: str, whole: str | None = None) -> float:
        total = training[whole or role]["sample_steps"]
        return predicted[role]["sample_steps"] / total if total else 0.0

    value = advantage(predicted)
    teacher = share("teacher")
    return [
        {"label": "PURGE retrains", "value": f"{share('purge'):.0%}",
         "help": "of the PURGE students' training, in sample-steps (samples x epochs)"},
        {"label": "Baseline (SISA) retrains", "value": f"{share('baseline'):.0%}",
         "help": "of the baseline students' training: each of its labels came from the whole ensemble"},
        {"label": "Full retrain", "value": "100%", "help": "every teacher and every student from scratch"},
        {"label": "PURGE's advantage", "value": "–" if value is None else f"{value:.2f}×",
         "help": ("baseline student sample-steps ÷ PURGE students' sample-steps for this request. Teacher "
                  f"retraining ({teacher:.0%} of the teachers' training) is the same for both and left out.")},
    ]


def cumulative_advantage(records: list[dict]) -> float | None:
    """PURGE's advantage over every served request together: the baseline students' sample-steps summed
    over the requests ÷ PURGE's students' (each request's predicted cost, which its measured work equals)."""
    done = [r for r in records if r.get("status") == "done" and "baseline" in r.get("methods", ())
            and "purge" in r.get("methods", ())]
    total = {m: {"sample_steps": sum(r["predicted"][m]["sample_steps"] for r in done)} for m in ("purge", "baseline")}
    return advantage(total)


def before_after_frame(record: dict) -> pd.DataFrame:
    """One row per constituent: changed or bit-identical (parameter hash before and after), its test
    accuracy and its probability of each forgotten sample's true label before and after, and, once
    verified, whether it equals the from-scratch reference's hash."""
    before, after = record.get("hashes_before", {}), record.get("hashes_after", {})
    outputs_before, outputs_after = record.get("outputs_before", {}), record.get("outputs_after", {})
    reference = {f"{d['role']}-{d['constituent']}": d.get("reference_hash") for d in record.get("details", [])}
    rows = []
    for key in before:
        role, c = key.rsplit("-", 1)
        was, now = outputs_before.get(key, {}), outputs_after.get(key, {})
        rows.append({
            "Model": constituent_label(role, int(c)),
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
