"""The Forget page's canaries and exact-against-approximate contrast (DESIGN section 14): figures and
sentences, pure builders, no st.* calls.

Each takes a request's audit report: canary rates {role: {constituent (str): {before, after,
teacher_only, reference}}} and the approximate contrast {rows, relearning, quantisation}.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.forget.evidence_views import BEFORE, REFERENCE, SERIES_COLOURS, SERIES_TITLES, TEACHER_ONLY, neglog
from dashboard.shared.evidence import ALPHA, constituent_name, p_text, rate_text
from dashboard.shared.figures import ROLE_COLOURS
from purge_engine import ConstituentName, student_label, teacher_label, title

# -- canaries --------------------------------------------------------------------------------------------
CANARY_STATES = (("before", "before the request", BEFORE),
                 ("teacher_only", "teacher only forgotten", TEACHER_ONLY),
                 ("after", "after (each method's retraining)", None),  # None: the role's own colour
                 ("reference", "from-scratch reference", REFERENCE))


def canary_frame(report: dict, roles=("teacher", "purge", "single_teacher", "baseline"),
                 every: bool = False) -> pd.DataFrame:
    """Long: role, constituent, name, short ("Student 1"), state (before / teacher_only / after /
    reference), rate in [0, 1] (NaN where not measured). The constituents of `roles` the report holds:
    every one, or (every=False) the first (Teacher 1, Student 1: where canaries are planted) and those
    with a rate above 0 at any time."""
    rows = []
    for role in (r for r in roles if r in report.get("canary", {})):
        for constituent, rates in sorted(report["canary"][role].items(), key=lambda kv: int(kv[0])):
            if not (every or int(constituent) == 0 or any(rates.get(s) for s, _, _ in CANARY_STATES)):
                continue
            for state, _, _ in CANARY_STATES:
                rate = rates.get(state)
                rows.append({"role": role, "constituent": int(constituent),
                             "name": constituent_name(role, int(constituent)),
                             "short": (teacher_label if role == "teacher" else student_label)(int(constituent)),
                             "state": state,
                             "rate": math.nan if rate is None else float(rate)})
    return pd.DataFrame(rows, columns=["role", "constituent", "name", "short", "state", "rate"])


def canary_figure(report: dict) -> go.Figure | None:
    """Grouped bars, one group per constituent (grouped by role): its canary rate before the request,
    with the teacher alone forgotten, after this request, and on the reference. None without canaries."""
    frame = canary_frame(report)
    if frame.empty:
        return None
    fig = go.Figure()
    for state, name, colour in CANARY_STATES:
        part = frame[frame["state"] == state]
        if part["rate"].isna().all():
            continue  # the reference before a verify
        fig.add_trace(go.Bar(
            x=[[title(r, "short") for r in part["role"]], list(part["short"])], y=part["rate"] * 100, name=name,
            marker={"color": colour or [ROLE_COLOURS.get(r, "#555555") for r in part["role"]],
                    "pattern": {"shape": "/" if state == "teacher_only" else ""}},
            text=[rate_text(r) for r in part["rate"]],
            textposition="outside", cliponaxis=False,
            customdata=list(part["name"]), hovertemplate="%{customdata}: %{y:.0f} %<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group", height=340, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      yaxis={"title": "canaries answered with the planted label (%)", "range": [0, 105]})
    return fig


def canary_cost_text(report: dict) -> str | None:
    """The three ways to forget canaries, in sample-steps: teacher only, PURGE, the baseline."""
    cost = report.get("canary_cost") or {}
    teacher = cost.get("teacher")
    if teacher is None:
        return None
    parts = [f"teacher only {teacher:,} sample-steps (students untouched)"]
    for method in ("purge", "baseline"):
        if method in cost:
            parts.append(f"{title(method, 'short')} {teacher:,} + {cost[method]['students']:,} for its students")
    return "Cost of each way to forget: " + "; ".join(parts) + "."


# -- exact against approximate --------------------------------------------------------------------------
CONTRAST_ROLES = {"teacher": "Teachers retrained", "purge": "PURGE students retrained"}
CONTRAST_NOUNS = {"teacher": "teachers", "purge": "PURGE students"}


def contrast_frame(report: dict) -> pd.DataFrame:
    """Long: series (reference / purge / approximate), role (of the contrasted rows: teacher, purge), test
    ("round 0".."round R" of relearning, then "8-bit", "4-bit" of quantisation), kind ("relearning" or
    "quantisation"), median_p (over the contrasted rows of that role), canary_rate (mean over the
    contrasted constituents of that role; NaN without canaries)."""
    contrast = report.get("contrast") or {}
    roles = [r["role"] for r in contrast.get("rows", [])]
    rows = []
    for series in ("reference", "purge", "approximate"):
        points = [(f"round {p['round']}", "relearning", p) for p in (contrast.get("relearning") or {}).get(series)
                  or []]
        quantised = ((contrast.get("quantisation") or {}).get(series) or {}).items()
        points += [(f"{bits}-bit", "quantisation", p) for bits, p in sorted(quantised, key=lambda kv: -int(kv[0]))]
        for role in dict.fromkeys(roles):
            rows += [_point_row(series, role, roles, test, kind, point) for test, kind, point in points]
    return pd.DataFrame(rows, columns=["series", "role", "test", "kind", "median_p", "canary_rate"])


def _point_row(series: str, role: str, roles: list[str], test: str, kind: str, point: dict) -> dict:
    ps = [p for p, r in zip(point.get("p", []), roles, strict=False) if r == role and p is not None]
    rates = [v for k, v in (point.get("canary_rate") or {}).items() if ConstituentName.parse(k).role == role]
    return {"series": series, "role": role, "test": test, "kind": kind,
            "median_p": float(np.median(ps)) if ps else math.nan,
            "canary_rate": float(np.mean(rates)) if rates else math.nan}


def contrast_before_p(report: dict, role: str | None = None) -> float | None:
    """Median p before the request of the contrasted rows (of `role`, or all): where approximate
    forgetting starts from."""
    contrast = report.get("contrast") or {}
    wanted = {(r["sample_id"], r["role"], r["constituent"]) for r in contrast.get("rows", [])
              if role is None or r["role"] == role}
    ps = [r["p_before"] for r in report.get("membership", [])
          if (r["sample_id"], r["role"], r["constituent"]) in wanted and r.get("p_before") is not None]
    return float(np.median(ps)) if ps else None


def contrast_figure(report: dict) -> go.Figure | None:
    """One panel per retrained role: −log10 of the median p of its contrasted rows right after
    forgetting (round 0), after each round of relearning on the retained data, and with the weights
    rounded to 8 and 4 bits; one line per series, the reference wide and pale underneath so PURGE's
    line shows on it; a dotted line at the level before the request. None without a contrast."""
    frame = contrast_frame(report)
    if frame.empty:
        return None
    roles = list(dict.fromkeys(frame["role"]))
    fig = make_subplots(rows=1, cols=len(roles), shared_yaxes=True, horizontal_spacing=0.05,
                        subplot_titles=[CONTRAST_ROLES.get(r, r) for r in roles])
    for col, role in enumerate(roles, start=1):
        for series in dict.fromkeys(frame["series"]):
            for kind in ("relearning", "quantisation"):
                part = frame[(frame["series"] == series) & (frame["role"] == role) & (frame["kind"] == kind)]
                fig.add_trace(_contrast_trace(series, kind, part, legend=col == 1 and kind == "relearning"),
                              row=1, col=col)
        before = contrast_before_p(report, role)
        if before is not None:
            fig.add_hline(y=neglog(before), line={"dash": "dot", "color": BEFORE, "width": 2}, row=1, col=col,
                          annotation_text=f"before the request: median p {p_text(before)}",
                          annotation_position="top left", annotation_font={"color": "#555555", "size": 11})
        fig.add_hline(y=-math.log10(ALPHA), line={"dash": "dash", "color": "#666666", "width": 1}, row=1, col=col,
                      annotation_text=f"p = {ALPHA:g} · member-like above", annotation_position="bottom right",
                      annotation_font={"size": 11, "color": "#444444"})
    befores = [neglog(contrast_before_p(report, r)) for r in roles if contrast_before_p(report, r) is not None]
    top = max([neglog(p) for p in frame["median_p"] if not math.isnan(p)] + befores + [2.0])
    fig.update_yaxes(range=[-0.3, top * 1.18])
    fig.update_yaxes(title_text="−log10 median p (up: member-like)", row=1, col=1)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(dict.fromkeys(frame["test"])),
                     title_text="relearning rounds · weights rounded")
    fig.update_layout(height=400, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.28, "yanchor": "top"})
    return fig


def _contrast_trace(series: str, kind: str, part: pd.DataFrame, legend: bool) -> go.Scatter:
    wide = series == "reference"  # drawn first, wide and pale: a PURGE line on top of it shows as a stripe
    return go.Scatter(
        x=list(part["test"]), y=[neglog(p) for p in part["median_p"]], name=SERIES_TITLES[series],
        mode="lines+markers" if kind == "relearning" else "markers", legendgroup=series, showlegend=legend,
        opacity=0.35 if wide else 1.0,
        line={"color": SERIES_COLOURS[series], "width": 12 if wide else 3,
              "dash": "dot" if series == "approximate" else "solid"},
        marker={"size": 22 if wide else 10, "color": SERIES_COLOURS[series],
                "symbol": "diamond" if series == "approximate" else "circle"},
        customdata=[p_text(p) for p in part["median_p"]],
        hovertemplate="%{x}: median p %{customdata}<extra>" + SERIES_TITLES[series] + "</extra>")


def contrast_summary(report: dict) -> str | None:
    """One sentence: per retrained role, the median p right after forgetting under PURGE and under the
    approximate method, beside the level before the request; and whether PURGE equals the reference."""
    frame = contrast_frame(report)
    if frame.empty:
        return None
    start = frame[frame["test"] == "round 0"]
    parts = []
    for role in dict.fromkeys(start["role"]):
        at = start[start["role"] == role].set_index("series")["median_p"]
        parts.append(f"{CONTRAST_NOUNS.get(role, role)} {p_text(at.get('purge'))} "
                     f"under PURGE, {p_text(at.get('approximate'))} approximately "
                     f"(before: {p_text(contrast_before_p(report, role))})")
    text = "Median p right after forgetting: " + "; ".join(parts) + "."
    if not (frame["series"] == "reference").any():
        return text + " Verify to draw the from-scratch reference's series beside them."
    return text + (" PURGE's series equals the reference's point for point." if _series_equal(frame) else
                   " PURGE's series differs from the reference's.")


def _series_equal(frame: pd.DataFrame) -> bool:
    purge = frame[frame["series"] == "purge"].set_index(["role", "test"])["median_p"]
    reference = frame[frame["series"] == "reference"].set_index(["role", "test"])["median_p"]
    return purge.index.equals(reference.index) and bool((purge == reference).all())


def spent_text(report: dict) -> str | None:
    """The approximate method's compute beside PURGE's: sample-steps spent against the budget."""
    contrast = report.get("contrast") or {}
    budget, spent = contrast.get("budget_sample_steps") or {}, contrast.get("spent_sample_steps") or {}
    if not budget:
        return None
    return (f"Approximate fine-tuning was given PURGE's compute: {sum(spent.values()):,} sample-steps "
            f"(PURGE spent {sum(budget.values()):,} retraining the same constituents).")
