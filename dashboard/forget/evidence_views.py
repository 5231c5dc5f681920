"""The Forget page's evidence of forgetting per sample (DESIGN section 14): sentences, the verdict and the
strip of p-values before, after and on the from-scratch reference. Pure builders, no st.* calls.

Each takes a request's evidence in the shape `purge_engine.audit.report` returns (the "report"; see
shared/evidence.py). Ids are 0-based here and 1-based on screen.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from dashboard.shared.evidence import ALPHA, STRIP_ROLES, membership_frame, p_text
from dashboard.shared.figures import ROLE_COLOURS
from purge_engine import teacher_label, title

P_FLOOR = 1e-300  # a p that underflowed to 0 is drawn here (float64's smallest normal is 2e-308)
MAX_SAMPLES = 12  # samples drawn one by one; more are summarised by the most member-like before
GROUP_OVER = 2  # a role with more exposed students than this gets one line of medians per sample

# Okabe-Ito, as shared/figures.py: grey before, the role's colour after, vermillion (full retrain) for the reference.
BEFORE, REFERENCE, APPROXIMATE = "#999999", ROLE_COLOURS["full_retrain"], "#CC79A7"
TEACHER_ONLY = "#E69F00"
STATE_TITLES = {"before": "before the request", "after": "after (this request)",
                "reference": "from-scratch reference"}
SERIES_TITLES = {"reference": "From-scratch reference", "purge": "PURGE (exact)",
                 "approximate": "Approximate: fine-tuning on the retained data"}
SERIES_COLOURS = {"reference": REFERENCE, "purge": ROLE_COLOURS["purge"], "approximate": APPROXIMATE}

CARDS_CAPTION = ("✓: after equals the from-scratch reference, bit for bit. Listed: the teacher that held the sample "
                 "and every student that held it or was taught by that teacher.")
STRIP_CAPTION = ("Each row: a forgotten sample on a constituent that held it or learned from it. Further right = "
                 "more confident on the sample than constituents that never saw it (−log10 p); right of the dashed "
                 "line (p < 0.05) it looks like a member. Open grey: before the request; filled: after; ring: the "
                 "from-scratch reference. A filled dot inside its ring: after equals the reference.")
CANARY_CAPTION = ("Canaries are samples planted in Teacher 1's shard with a wrong (flipped) label; Student 1 is "
                  "taught on them by Teacher 1. A bar is the share of canaries a constituent answers with the "
                  "planted label: forgetting them on the teacher alone leaves the student repeating them; PURGE "
                  "retrains the student too, down to the reference.")
CONTRAST_CAPTION = ("Fine-tuning on the retained data (a common approximate method, given PURGE's compute) starts "
                    "from the old weights; a few rounds of relearning or rounding the weights (quantisation) show "
                    "what it still carries. PURGE's line lies on the reference's: they are the same model.")


def neglog(p: float | None) -> float:
    """-log10 p (p floored at P_FLOOR); NaN for None."""
    return math.nan if p is None else -math.log10(max(float(p), P_FLOOR))


def shown_samples(report: dict, limit: int = MAX_SAMPLES) -> list[int]:
    """The request's samples drawn one by one: all of them up to `limit`, else the `limit` that looked most
    like members before the request (smallest p on their teacher, then on any constituent)."""
    samples = [int(i) for i in report.get("samples", [])]
    if len(samples) <= limit:
        return samples
    frame = membership_frame(report)
    first = {}
    for row in frame.sort_values("role", key=lambda r: r != "teacher", kind="stable").itertuples():
        if row.p_before is not None and not math.isnan(row.p_before):
            first.setdefault(int(row.sample_id), row.p_before)
    return sorted(samples, key=lambda i: (first.get(i, math.inf), i))[:limit]


def sample_lines(report: dict, sample_id: int, group_over: int = GROUP_OVER) -> list[str]:
    """The sample's p-values in words (markdown), one line per constituent that held it or learned from
    it: "Teacher 5: p 2e-9 → **0.71** (reference 0.71 ✓)", ✓ where after equals the reference bit for
    bit. A role with more than `group_over` such students (the baseline after a teacher-side sample:
    all of them) gets one line of medians; a role no test could score, one line saying why."""
    frame = membership_frame(report)
    rows = frame[frame["sample_id"] == sample_id]
    lines = []
    for role in dict.fromkeys(rows["role"]):
        group = rows[rows["role"] == role]
        if group["p_after"].isna().all() and not group["references"].any():
            source = _teacher_text(group.iloc[0]["teacher_id"], "the sample's teacher")
            lines.append(f"{title(role, 'short')} students {_ids_text(group['constituent'])}: no test "
                         f"(every one was taught by {source})")
        elif len(group) > group_over:
            lines.append(_group_line(role, group))
        else:
            lines += [f"{row.name}{_via_text(row.role, row.via, row.teacher_id)}: p {p_text(row.p_before)} → "
                      f"**{p_text(row.p_after)}** ({_reference_text(row)})" for row in group.itertuples()]
    return lines


def _group_line(role: str, group: pd.DataFrame) -> str:
    """"Baseline (SISA) Students 1–4 (taught by Teacher 4): median p 0.58 → **0.94** (reference ✓)"."""
    vias = set(group["via"])
    via = _via_text(role, vias.pop(), group.iloc[0]["teacher_id"]) if len(vias) == 1 else \
        f" (taught by {_teacher_text(group.iloc[0]['teacher_id'], 'its teacher')}, or held it)"
    if group["p_reference"].isna().all():
        reference = "reference: verify to compute"
    else:
        reference = "reference ✓" if group["same"].all() else "differs from the reference"
    return (f"{title(role, 'short')} Students {_ids_text(group['constituent'])}{via}: median p "
            f"{p_text(_median(group['p_before']))} → **{p_text(_median(group['p_after']))}** ({reference})")


def _median(values: pd.Series) -> float | None:
    values = values.dropna().astype(float)
    return None if values.empty else float(values.median())


def _via_text(role: str, via: str, teacher_id) -> str:
    """How a student came by the sample ("" for a teacher, which always held it)."""
    if role == "teacher":
        return ""
    teacher = _teacher_text(teacher_id, "its teacher")
    return {"data": " (held it)", "teacher": f" (taught by {teacher})",
            "data+teacher": f" (held it; taught by {teacher})"}.get(via, f" ({via})")


def _teacher_text(teacher_id, otherwise: str) -> str:
    """"Teacher 5"; `otherwise` for a student-side sample (None, or NaN in a frame)."""
    return otherwise if teacher_id is None or pd.isna(teacher_id) else teacher_label(int(teacher_id))


def _reference_text(row) -> str:
    if row.p_reference is None or (isinstance(row.p_reference, float) and math.isnan(row.p_reference)):
        return "reference: verify to compute"
    return f"reference {p_text(row.p_reference)}" + (" ✓" if row.same else ", differs")


def _ids_text(constituents) -> str:
    """0-based ids -> "1–4" (a run of three or more) or "1, 3"."""
    shown = sorted(int(c) + 1 for c in constituents)
    if len(shown) > 2 and shown == list(range(shown[0], shown[-1] + 1)):
        return f"{shown[0]}–{shown[-1]}"
    return ", ".join(map(str, shown))


def no_reference_note(report: dict) -> str | None:
    """The teaching sentence for students no sibling can audit (the baseline after a teacher-side sample:
    every baseline student learned from the teacher that held it): tested against extra reference
    models trained for the audit, or not tested at all."""
    frame = membership_frame(report)
    orphans = frame[(frame["references"] == 0) & (frame["role"] != "teacher")]
    if orphans.empty:
        return None
    roles = " and ".join(dict.fromkeys(title(r, "short") for r in orphans["role"]))
    extra = int(orphans["extra_references"].max())
    how = (f"so they are tested against {extra} extra reference models, trained for the audit on data without "
           "the sample" if extra and orphans["p_after"].notna().any() else
           "so there is nothing to compare against and no test")
    return (f"No {roles} student exists that never saw the sample: every one learned from the teacher that held "
            f"it, so the ensemble cannot audit itself there; {how}. That is the baseline's cost in another form: "
            "a teacher-side sample reaches all of its students, where under PURGE it reaches one.")


def verdict_line(report: dict) -> str:
    """One sentence over the strip's rows: how many looked like members before and after, and whether
    after equals the reference everywhere."""
    frame = membership_frame(report)
    rows = frame[frame["role"].isin(STRIP_ROLES) & frame["p_after"].notna()]
    if rows.empty:
        return "No membership test was recorded for this request (it was served without scoring)."
    before = int((rows["p_before"].astype(float) < ALPHA).sum())
    after = int((rows["p_after"].astype(float) < ALPHA).sum())
    text = (f"Member-like (p < {ALPHA:g}) on the teachers and PURGE students: {before} of {len(rows)} before the "
            f"request, {after} after.")
    if rows["p_reference"].isna().all():
        return text + " Verify to score the from-scratch reference beside them."
    same = bool(rows["same"].all())
    if same and after:
        text += (" A member-like p that equals the reference's is what a model that never saw the sample gives "
                 "(an atypical sample): not a leak.")
    return text + (" After equals the from-scratch reference on every one, bit for bit." if same else
                   " After differs from the from-scratch reference on "
                   f"{int((~rows['same']).sum())} of them.")


def strip_figure(report: dict, samples: list[int] | None = None) -> go.Figure | None:
    """Per forgotten sample, its teacher row and its PURGE student rows: −log10 p before (open grey),
    after (filled, the role's colour) and on the reference (a ring), on one horizontal axis with a
    dashed line at p = ALPHA. None when no row has a p-value."""
    frame = membership_frame(report)
    frame = frame[frame["role"].isin(STRIP_ROLES) & frame["p_before"].notna()]
    if samples is not None:
        frame = frame[frame["sample_id"].isin(samples)]
        frame = frame.assign(order=frame["sample_id"].map({s: i for i, s in enumerate(samples)}))
        frame = frame.sort_values(["order", "role"], key=lambda c: c if c.name == "order" else c != "teacher",
                                  kind="stable")
    if frame.empty:
        return None
    labels = [f"#{s} · {n}" for s, n in zip(frame["sample_id"], frame["name"], strict=True)]
    fig = go.Figure()
    values = {state: [neglog(p) for p in frame[f"p_{state}"]] for state in ("before", "after", "reference")}
    fig.add_trace(_arrows(values["before"], values["after"], labels))
    if not all(math.isnan(v) for v in values["reference"]):
        fig.add_trace(go.Scatter(x=values["reference"], y=labels, mode="markers", name=STATE_TITLES["reference"],
                                 marker={"symbol": "circle-open", "size": 20, "color": REFERENCE, "line": {"width": 3}},
                                 customdata=[p_text(p) for p in frame["p_reference"]],
                                 hovertemplate="reference: p %{customdata}<extra>%{y}</extra>"))
    fig.add_trace(go.Scatter(x=values["before"], y=labels, mode="markers", name=STATE_TITLES["before"],
                             marker={"symbol": "circle-open", "size": 11, "color": BEFORE, "line": {"width": 2}},
                             customdata=[p_text(p) for p in frame["p_before"]],
                             hovertemplate="before: p %{customdata}<extra>%{y}</extra>"))
    fig.add_trace(go.Scatter(x=values["after"], y=labels, mode="markers", name=STATE_TITLES["after"],
                             marker={"symbol": "circle", "size": 10,
                                     "color": [ROLE_COLOURS.get(r, "#555555") for r in frame["role"]]},
                             customdata=[f"{p_text(p)}{' = reference' if s else ''}"
                                         for p, s in zip(frame["p_after"], frame["same"], strict=True)],
                             hovertemplate="after: p %{customdata}<extra>%{y}</extra>"))
    return _strip_layout(fig, len(labels), max(v for vs in values.values() for v in vs if not math.isnan(v)))


def _arrows(before: list[float], after: list[float], labels: list[str]) -> go.Scatter:
    """Thin grey segments from each row's before to its after (one trace, rows split by None)."""
    xs, ys = [], []
    for b, a, y in zip(before, after, labels, strict=True):
        if not (math.isnan(b) or math.isnan(a)):
            xs += [b, a, None]
            ys += [y, y, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#cccccc", "width": 2}, hoverinfo="skip",
                      showlegend=False)


def _strip_layout(fig: go.Figure, rows: int, largest: float) -> go.Figure:
    right = max(3.0, largest * 1.08)
    fig.add_vline(x=-math.log10(ALPHA), line={"dash": "dash", "color": "#666666", "width": 1})
    fig.update_layout(height=120 + 34 * rows, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
                      xaxis={"title": f"−log10 p  ·  right of the dashed line (p < {ALPHA:g}): member-like",
                             "range": [-0.25, right], "zeroline": False},
                      yaxis={"autorange": "reversed", "type": "category"})
    return fig
