"""The lesson's canary run as numbers and figures (Learn steps 9 and 10): pure, no st.*.

Canary rates come in the shape `Experiment.audit()["canary"]` has, role -> constituent (str) ->
{before, after, teacher_only, reference} (fractions in [0, 1], None where not measured); before a
request the page measures "before" alone (`rates_table`). The contrast is the audit's `contrast`
{rows, relearning, quantisation}. Ids are 0-based here and 1-based on screen (DESIGN section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.shared.figures import ROLE_COLOURS
from purge_engine import CANARY_TEACHER, student_label, teacher_label

ALPHA = 0.05  # membership p below it looks like a member (the dashed line)
# Okabe-Ito: grey before, bluish green after the request, vermillion for the from-scratch reference.
STATES = {"before": ("before forgetting", "#999999"), "after": ("after forgetting", "#009E73"),
          "reference": ("from-scratch reference", "#D55E00")}
SERIES = {"reference": ("From-scratch reference", "#D55E00"), "purge": ("PURGE (exact)", ROLE_COLOURS["purge"]),
          "approximate": ("Approximate: fine-tuning at PURGE's compute", "#CC79A7")}
SHORT = {"reference": "reference", "purge": "PURGE", "approximate": "approximate"}


# -- who saw the canaries ------------------------------------------------------------------------------
def exposed_students(plan) -> list[int]:
    """PURGE students taught by the teacher that holds the canaries (in the lesson: Student 1 alone)."""
    return [k for k, group in enumerate(plan.mapping) if CANARY_TEACHER in group]


def bars(plan) -> list[tuple[str, str, int]]:
    """(name on screen, role, constituent) of every bar: the teacher that held the canaries, the PURGE
    students (exposed first), the baseline students."""
    exposed = exposed_students(plan)
    students = exposed + [k for k in range(plan.n_students) if k not in exposed]
    return ([(f"{teacher_label(CANARY_TEACHER)} · held them", "teacher", CANARY_TEACHER)]
            + [(f"PURGE {student_label(k)} · {'exposed' if k in exposed else 'unexposed'}", "purge", k)
               for k in students]
            + [(f"Baseline {student_label(k)}", "baseline", k) for k in range(plan.n_students)])


def rates_table(constituents: dict[str, list]) -> dict:
    """The audit's canary shape from per-role rates measured before any request
    (`Experiment.evaluate(canary inputs, planted labels)["constituents"]`)."""
    return {role: {str(c): {"before": rate} for c, rate in enumerate(rates)} for role, rates in constituents.items()}


def rate(table: dict, role: str, constituent: int, state: str = "before") -> float | None:
    return (table.get(role, {}).get(str(constituent)) or {}).get(state)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


# -- canary rates per constituent ------------------------------------------------------------------------
def canary_frame(table: dict, plan) -> pd.DataFrame:
    """Long: name, role, constituent, state (before / after / reference), rate in [0, 1]; states never
    measured are left out (after before a request, reference before a verify)."""
    rows = [{"name": name, "role": role, "constituent": c, "state": state, "rate": rate(table, role, c, state)}
            for state in STATES for name, role, c in bars(plan)]
    frame = pd.DataFrame(rows, columns=["name", "role", "constituent", "state", "rate"])
    measured = frame.groupby("state", sort=False)["rate"].transform(lambda r: r.notna().any())
    return frame[measured.astype(bool)].reset_index(drop=True)


def canary_figure(frame: pd.DataFrame) -> go.Figure:
    """Grouped bars: per constituent, the share of canaries it answers with the planted label, one bar
    per measured state."""
    fig = go.Figure()
    for state, part in frame.groupby("state", sort=False):
        name, colour = STATES[state]
        values = [None if v is None or math.isnan(v) else 100 * v for v in part["rate"]]
        fig.add_trace(go.Bar(x=list(part["name"]), y=values, name=name, marker_color=colour,
                             text=[percent(None if v is None else v / 100) for v in values],
                             textposition="outside", hovertemplate="%{x}: %{y:.0f} %<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group", showlegend=True, height=330, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      yaxis={"title": "canaries answered with<br>the planted label (%)", "range": [0, 115]})
    return fig


# -- three ways to forget --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Way:
    name: str
    retrains: str  # what it retrains, in words
    sample_steps: int
    left: float | None  # the highest canary rate left on a student afterwards
    where: str  # the student that rate is on ("any student" when it is 0)


def ways(report: dict, plan, scope) -> list[Way]:
    """Teacher only, PURGE and the baseline: each one's sample-steps (audit canary_cost) and the canary
    rate it leaves on its students (scope: the request's RetrainScope, for the words)."""
    cost, table = report["canary_cost"], report["canary"]
    teacher, teachers = cost["teacher"], ", ".join(teacher_label(i) for i in scope.teachers)
    purge = ", ".join(f"{student_label(k)} from chunk {s // plan.student_slices + 1}, where "
                      f"{teacher_label(CANARY_TEACHER)} enters" for k, s in scope.students["purge"].items())
    baseline = scope.students["baseline"]
    every = "from scratch" if not any(baseline.values()) else "from their first affected step"
    return [
        Way("Teacher only", f"{teachers}; every student kept", teacher, *_most(table, "purge", "teacher_only")),
        Way("PURGE", f"{teachers}, then {purge}", teacher + cost["purge"]["students"], *_most(table, "purge", "after")),
        Way("Baseline (SISA)", f"{teachers}, then all {len(baseline)} baseline students {every}",
            teacher + cost["baseline"]["students"], *_most(table, "baseline", "after"))]


def _most(table: dict, role: str, state: str) -> tuple[float | None, str]:
    rates = {int(c): r.get(state) for c, r in table.get(role, {}).items() if r.get(state) is not None}
    if not rates:
        return None, ""
    k = max(rates, key=lambda c: (rates[c], -c))
    return rates[k], student_label(k) if rates[k] else "any student"


# -- exact against approximate ---------------------------------------------------------------------------
def contrast_frame(contrast: dict) -> pd.DataFrame:
    """Long: series (reference / purge / approximate), kind (relearning / quantisation), test ("round r"
    or "8-bit", "4-bit"), x (the round; the bits), median_p over the contrasted rows (the forgotten samples
    on the constituents PURGE retrained). A series not measured yet (the reference before a verify) is
    left out."""
    rows = []
    for series in SERIES:
        for point in (contrast.get("relearning") or {}).get(series) or []:
            rows.append((series, "relearning", f"round {point['round']}", point["round"], _median(point)))
        quantised = ((contrast.get("quantisation") or {}).get(series) or {}).items()
        for bits, point in sorted(quantised, key=lambda kv: -int(kv[0])):
            rows.append((series, "quantisation", f"{bits}-bit", int(bits), _median(point)))
    return pd.DataFrame(rows, columns=["series", "kind", "test", "x", "median_p"])


def _median(point: dict) -> float:
    ps = [p for p in point.get("p", []) if p is not None]
    return float(np.median(ps)) if ps else math.nan


def before_p(report: dict) -> float | None:
    """Median membership p, before the request, of the contrasted rows: where forgetting starts from."""
    wanted = {(r["sample_id"], r["role"], r["constituent"]) for r in (report.get("contrast") or {}).get("rows", [])}
    ps = [r["p_before"] for r in report.get("membership", [])
          if (r["sample_id"], r["role"], r["constituent"]) in wanted and r.get("p_before") is not None]
    return float(np.median(ps)) if ps else None


def relearning_figure(frame: pd.DataFrame, before: float | None) -> go.Figure:
    """Median p (log axis, down: looks like a member) after forgetting (round 0) and after each round of
    relearning on the retained data; the reference wide and pale underneath, so PURGE's line on it shows."""
    part = frame[frame["kind"] == "relearning"]
    fig = _series_figure(part, "lines+markers")
    fig.update_xaxes(title_text="rounds of relearning on the retained data", dtick=1)
    return _p_axis(fig, frame, before)


def quantisation_figure(frame: pd.DataFrame, before: float | None) -> go.Figure:
    """Median p with every weight rounded to 8 and 4 bits, one marker per series."""
    part = frame[frame["kind"] == "quantisation"].assign(x=lambda f: f["test"])
    fig = _series_figure(part, "markers")
    fig.update_xaxes(title_text="weights rounded to", type="category")
    return _p_axis(fig, frame, before)


def _series_figure(part: pd.DataFrame, mode: str) -> go.Figure:
    fig = go.Figure()
    for series, rows in part.groupby("series", sort=False):
        name, colour = SERIES[series]
        wide = series == "reference"  # drawn first, wide and pale: PURGE's line on top shows as a stripe
        fig.add_trace(go.Scatter(
            x=list(rows["x"]), y=list(rows["median_p"]), name=name, mode=mode, opacity=0.35 if wide else 1.0,
            line={"color": colour, "width": 12 if wide else 3, "dash": "dot" if series == "approximate" else "solid"},
            marker={"color": colour, "size": 22 if wide else 10},
            hovertemplate="%{x}: median p %{y:.2g}<extra>" + name + "</extra>"))
    return fig


def _p_axis(fig: go.Figure, frame: pd.DataFrame, before: float | None) -> go.Figure:
    """A log p axis a decade below the lowest point. The level before forgetting (far lower, ~1e-10) is
    named in words at the foot rather than drawn: on the axis it would squeeze the curves into a line.
    Annotations on a log axis take log10 of the value (plotly); lines take the value itself."""
    low = math.log10(min([p for p in frame["median_p"] if p > 0] + [ALPHA])) - 1
    fig.add_hline(y=ALPHA, line={"dash": "dash", "color": "#666666", "width": 1})
    fig.add_annotation(x=1, xref="paper", xanchor="right", y=math.log10(ALPHA), yanchor="top", showarrow=False,
                       text=f"p = {ALPHA:g} · below: looks like a member", font={"size": 11, "color": "#444444"})
    if before:
        fig.add_annotation(x=0, xref="paper", xanchor="left", y=0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"before forgetting: median p {before:.0e} (far below) ↓",
                           font={"size": 11, "color": "#555555"})
    fig.update_yaxes(type="log", range=[low, 0.1], dtick=1, title_text="median membership p")  # decades
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top"})
    return fig


def last_round(frame: pd.DataFrame) -> dict[str, float]:
    """series -> median p after the last round of relearning."""
    part = frame[frame["kind"] == "relearning"]
    last = part[part["x"] == part["x"].max()]
    return dict(zip(last["series"], last["median_p"], strict=True))


def relearning_sentence(frame: pd.DataFrame) -> str:
    """What the relearning figure shows, in numbers: each series' median p after the last round."""
    rounds, last = int(frame.loc[frame["kind"] == "relearning", "x"].max()), last_round(frame)
    sentence = f"After {rounds} rounds of relearning: {_p_words(last)}."
    if last.get("approximate", 1.0) < ALPHA:
        sentence += (f" Below {ALPHA:g}, the approximate model's canaries still look like members: fine-tuning "
                     "started from weights that learned them.")
    return sentence


def quantisation_sentence(frame: pd.DataFrame) -> str:
    """What the quantisation figure shows, in numbers: each series' median p at the fewest bits."""
    part = frame[frame["kind"] == "quantisation"]
    fewest = part[part["x"] == part["x"].min()]
    median_p = dict(zip(fewest["series"], fewest["median_p"], strict=True))
    return (f"Weights rounded to {int(part['x'].min())} bits: " + _p_words(median_p) + ". Rounding neither "
            "separates PURGE from the reference nor hides what the approximate model kept.")


def _p_words(median_p: dict[str, float]) -> str:
    return "median p " + ", ".join(f"{SHORT[series]} {p:.2g}" for series, p in median_p.items())


def series_equal(contrast: dict, a: str, b: str) -> bool | None:
    """True when series a and b gave the same p at every relearning round and quantisation; None when
    either was not measured."""
    relearning, quantisation = contrast.get("relearning") or {}, contrast.get("quantisation") or {}
    if not relearning.get(a) or not relearning.get(b):
        return None
    ps = [[pt["p"] for pt in relearning[s]] + [quantisation.get(s, {})[k]["p"] for k in sorted(quantisation.get(s, {}))]
          for s in (a, b)]
    return ps[0] == ps[1]
