"""Evidence of forgetting (DESIGN section 14) as pictures and sentences: pure builders, no st.* calls.

Each takes a request's evidence in the shape `purge_engine.audit.report` returns (the "report"):
membership rows {sample_id, role, constituent, via, teacher_id, references, p_before, p_after,
p_reference}, canary rates {role: {constituent (str): {before, after, teacher_only, reference}}} and
the approximate contrast {rows, relearning, quantisation}. A p-value is the offline-LiRA test of
audit.py: small (say 1e-9) = the constituent is far more confident on the sample than constituents
that never saw it ("looks like a member"); after an exact forget it is what an unseen sample gets.
Ids are 0-based here and 1-based on screen.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import ROLE_COLOURS
from purge_engine.vocabulary import student_label, teacher_label, title

ALPHA = 0.05  # the dashed line: p below it counts as member-like
P_FLOOR = 1e-300  # a p that underflowed to 0 is drawn here (float64's smallest normal is 2e-308)
MAX_SAMPLES = 12  # samples drawn one by one; more are summarised by the most member-like before
GROUP_OVER = 2  # a role with more exposed students than this gets one line of medians per sample
STRIP_ROLES = ("teacher", "purge")  # the rows of the strip: the teacher that held a sample, PURGE's students
# Okabe-Ito, as figures.py: grey before, the role's colour after, vermillion (full retrain) for the reference.
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


def neglog(p: float | None) -> float:
    """-log10 p (p floored at P_FLOOR); NaN for None."""
    return math.nan if p is None else -math.log10(max(float(p), P_FLOOR))


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


def exposed_canary_rates(report: dict, role: str = "purge") -> tuple[float, float] | None:
    """(before, after) canary rate averaged over the request's students of `role` that held a forgotten
    sample or learned from its teacher; None without canaries or such students."""
    rates = report.get("canary", {}).get(role)
    exposed = {int(r["constituent"]) for r in report.get("membership", []) if r["role"] == role}
    rows = [rates[str(c)] for c in sorted(exposed) if rates and str(c) in rates]
    if not rows or any(r.get("after") is None for r in rows):
        return None
    return float(np.mean([r["before"] for r in rows])), float(np.mean([r["after"] for r in rows]))


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
    rates = [v for k, v in (point.get("canary_rate") or {}).items() if k.rsplit("-", 1)[0] == role]
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
