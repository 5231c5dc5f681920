"""Evidence of forgetting (DESIGN section 14) as numbers and words, for the Forget and Compare pages:
pure builders, no st.* calls.

Each takes a request's evidence in the shape `purge_engine.audit.report` returns (the "report"):
membership rows {sample_id, role, constituent, via, teacher_id, references, p_before, p_after,
p_reference} and canary rates {role: {constituent (str): {before, after, teacher_only, reference}}}.
A p-value is the offline-LiRA test of audit.py: small (say 1e-9) = the constituent is far more
confident on the sample than constituents that never saw it ("looks like a member"); after an exact
forget it is what an unseen sample gets. Ids are 0-based here and 1-based on screen.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from purge_engine import student_label, teacher_label, title

ALPHA = 0.05  # the dashed line: p below it counts as member-like

STRIP_ROLES = ("teacher", "purge")  # the rows of the strip: the teacher that held a sample, PURGE's students


# -- numbers as words -----------------------------------------------------------------------------------
def p_text(p: float | None) -> str:
    """0.614 -> "0.61"; 2.3e-9 -> "2e-9"; 0 -> "<1e-300"; None -> "—"."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    if p <= 0:
        return "<1e-300"
    if p >= 0.01:
        return f"{p:.2f}"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def rate_text(rate: float | None) -> str:
    """0.375 -> "38 %"; None or NaN -> "—"."""
    return "—" if rate is None or math.isnan(rate) else f"{100 * rate:.0f} %"


def constituent_name(role: str, constituent: int) -> str:
    """"Teacher 5", "PURGE Student 3", "Baseline (SISA) Student 1"."""
    if role == "teacher":
        return teacher_label(constituent)
    return f"{title(role, 'short')} {student_label(constituent)}"


# -- per-sample membership ------------------------------------------------------------------------------
def membership_frame(report: dict) -> pd.DataFrame:
    """One row per (sample, constituent) of the report: sample_id, role, constituent, via, teacher_id,
    references (siblings that never saw the sample), extra_references (reference models trained for the
    audit where siblings were too few; 0 in reports from before they existed), p_before, p_after,
    p_reference, name (on screen), same (after == reference, bit for bit)."""
    columns = ["sample_id", "role", "constituent", "via", "teacher_id", "references", "extra_references",
               "p_before", "p_after", "p_reference"]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in report.get("membership", [])], columns=columns)
    frame["extra_references"] = frame["extra_references"].fillna(0).astype(int)
    frame["name"] = [constituent_name(r, c) for r, c in zip(frame["role"], frame["constituent"], strict=True)]
    frame["same"] = [a is not None and a == ref for a, ref in zip(frame["p_after"], frame["p_reference"], strict=True)]
    return frame


def exposed_canary_rates(report: dict, role: str = "purge") -> tuple[float, float] | None:
    """(before, after) canary rate averaged over the request's students of `role` that held a forgotten
    sample or learned from its teacher; None without canaries or such students."""
    rates = report.get("canary", {}).get(role)
    exposed = {int(r["constituent"]) for r in report.get("membership", []) if r["role"] == role}
    rows = [rates[str(c)] for c in sorted(exposed) if rates and str(c) in rates]
    if not rows or any(r.get("after") is None for r in rows):
        return None
    return float(np.mean([r["before"] for r in rows])), float(np.mean([r["after"] for r in rows]))
