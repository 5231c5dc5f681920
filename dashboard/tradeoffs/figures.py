"""Figures for the Trade-offs page: speed-up against theory, accuracy against isolation, and the stream of
forget requests (its frame, figure and sentences, from purge_engine.simulate). Pure, no st.* calls.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.shared import cost
from dashboard.shared.figures import ROLE_COLOURS
from dashboard.tradeoffs.views import DODGE, FINAL_FULL, NT_DASHES, SIDES, slice_colour
from purge_engine import StreamResult, vocabulary


# -- figures ----------------------------------------------------------------------------------------
def speedup_figure(curves: pd.DataFrame, measured: pd.DataFrame | None = None) -> go.Figure:
    """Teacher-side and student-side speed-up against N_s (log x): closed-form curves per (N_t, r),
    measured points with min–max error bars where a sweep is given (measured_frame)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("Teacher-side: PURGE over the baseline student",
                                        "Student-side: PURGE over retraining that student"))
    slices = sorted(set(curves["r"]) | (set(measured["r"]) if measured is not None else set()))
    several_nt = curves["N_t"].nunique() > 1
    for n_teachers, r in curves[["N_t", "r"]].drop_duplicates().itertuples(index=False):
        rows = curves[(curves["N_t"] == n_teachers) & (curves["r"] == r)]
        _curve_pair(fig, rows, _series_name(n_teachers, r, several_nt), slice_colour(r, slices),
                    NT_DASHES[sorted(set(curves["N_t"])).index(n_teachers) % len(NT_DASHES)])
    if measured is not None and not measured.empty:
        _measured_points(fig, measured, slices, several_nt)
    ticks = sorted(set(curves["N_s"]) | (set(measured["N_s"]) if measured is not None else set()))
    for col in (1, 2):
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[str(t) for t in ticks], title="students N_s",
                         row=1, col=col)
    for col in (1, 2):  # every panel says what its axes are
        fig.update_yaxes(title="speed-up (×)", rangemode="tozero", row=1, col=col)
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.18, "yanchor": "top"})
    return fig


def _series_name(n_teachers: int, r: int, several_nt: bool) -> str:
    return f"N_t = {n_teachers}, r = {r}" if several_nt else f"r = {r}"


def _curve_pair(fig: go.Figure, rows: pd.DataFrame, name: str, colour: str, dash: str) -> None:
    for col, column in ((1, "teacher_side"), (2, "student_side")):
        fig.add_trace(go.Scatter(
            x=rows["N_s"], y=rows[column], mode="lines", name=f"theory, {name}", legendgroup=f"theory {name}",
            showlegend=col == 1, line={"color": colour, "dash": dash, "width": 2},
            customdata=rows["c"], hovertemplate="N_s = %{x}, c = %{customdata:.3~g}: %{y:.2f}×<extra>theory, "
                                                + name + "</extra>"), row=1, col=col)


def _measured_points(fig: go.Figure, measured: pd.DataFrame, slices: list[int], several_nt: bool) -> None:
    groups = list(measured.groupby(["N_t", "r"], sort=True))
    for i, ((n_teachers, r), rows) in enumerate(groups):
        name = _series_name(int(n_teachers), int(r), several_nt)
        dodge = 2 ** (DODGE * (i - (len(groups) - 1) / 2))  # side by side on the log axis, not on top
        for col, title in zip((1, 2), SIDES, strict=True):
            y = rows[title].astype(float)
            fig.add_trace(go.Scatter(
                x=rows["N_s"] * dodge, y=y, customdata=rows["N_s"], mode="markers", name=f"measured, {name}",
                legendgroup=f"measured {name}", showlegend=col == 1,
                marker={"color": slice_colour(int(r), slices), "size": 10, "symbol": "diamond",
                        "line": {"color": "white", "width": 1}},
                error_y={"type": "data", "symmetric": False, "array": rows[f"{title} max"].astype(float) - y,
                         "arrayminus": y - rows[f"{title} min"].astype(float), "thickness": 1.5, "width": 5},
                hovertemplate="N_s = %{customdata}: measured %{y:.2f}×<extra>" + name + "</extra>"), row=1, col=col)


ACCURACY_ROLES = ("teacher", "purge", "single_teacher", "baseline")


def accuracy_figure(frame: pd.DataFrame) -> go.Figure:
    """Test accuracy (%) of each ensemble against N_s (log x): a colour per role, a dash per (N_t, r) when
    the sweep has several. The teachers do not depend on N_s or r: drawn once per N_t, dotted."""
    fig = go.Figure()
    groups = [tuple(g) for g in frame[["N_t", "r"]].drop_duplicates().itertuples(index=False)]
    several_nt, several = frame["N_t"].nunique() > 1, len(groups) > 1
    for i, (n_teachers, r) in enumerate(groups):
        first_of_nt = all(nt != n_teachers for nt, _ in groups[:i])
        for role in ACCURACY_ROLES:
            if role == ACCURACY_ROLES[0] and not first_of_nt:
                continue
            rows = frame[(frame["N_t"] == n_teachers) & (frame["r"] == r) & (frame["role"] == role)]
            name = _accuracy_name(role, n_teachers, r, several_nt, several)
            fig.add_trace(go.Scatter(
                x=rows["N_s"], y=rows["accuracy"], mode="lines+markers", name=name,
                line={"color": ROLE_COLOURS.get(role),
                      "dash": "dot" if role == ACCURACY_ROLES[0] else NT_DASHES[i % len(NT_DASHES)]},
                marker={"size": 8}, hovertemplate="N_s = %{x}: %{y:.1f} %<extra>" + name + "</extra>"))
    ticks = sorted(set(frame["N_s"]))
    fig.update_layout(height=400, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      xaxis={"title": "students N_s", "type": "log", "tickvals": ticks,
                             "ticktext": [str(t) for t in ticks]},
                      yaxis={"title": "test accuracy (%)"})
    return fig


def _accuracy_name(role: str, n_teachers: int, r: int, several_nt: bool, several: bool) -> str:
    name = vocabulary.title(role)
    if role == ACCURACY_ROLES[0]:
        return f"{name} (N_t = {n_teachers})" if several_nt else name
    if not several:
        return name
    return f"{name}, N_t = {n_teachers}, r = {r}" if several_nt else f"{name}, r = {r}"


# -- the request stream --------------------------------------------------------------------------------
# The stream's rows, as every cost table names them (cost.py): teacher retraining, each method's students only.
STREAM_ROWS = {"teacher": cost.row_title("teacher"), "purge": cost.row_title("purge"),
               "baseline": cost.row_title("baseline"), "full_retrain": "Full retrain after every step"}
# The chart: each policy's whole bill against retraining everything (what the break-even compares).
BILL_LINES = {"purge": "Teachers + PURGE students", "baseline": "Teachers + baseline students",
              "full_retrain": STREAM_ROWS["full_retrain"]}
STREAM_COLOURS = {role: ROLE_COLOURS[role] for role in BILL_LINES}


def _bill(result: StreamResult, key: str) -> list[int]:
    return [row["cumulative_full_retrain"] for row in result.rows] if key == "full_retrain" else result.bill(key)


def stream_frame(result: StreamResult) -> pd.DataFrame:
    """One row per served step: requests served, teachers hit (1-based), each cost row's sample-steps and
    cumulative sample-steps (STREAM_ROWS), and each policy's cumulative bill (BILL_LINES)."""
    frame = pd.DataFrame([{"Step": row["step"], "Requests served": row["requests"],
                           "Sample ids": ", ".join(str(i) for i in row["sample_ids"]),
                           "Teachers hit": ", ".join(str(t + 1) for t in row["teacher_ids"]),
                           **{f"{title} sample-steps": row[key] for key, title in STREAM_ROWS.items()},
                           **{f"{title} cumulative": row[f"cumulative_{key}"] for key, title in STREAM_ROWS.items()}}
                          for row in result.rows])
    for key in ("purge", "baseline"):
        frame[f"{BILL_LINES[key]} cumulative"] = result.bill(key)
    return frame


def stream_figure(result: StreamResult, log_y: bool = True) -> go.Figure:
    """Cumulative bills against requests served: teacher retraining + PURGE students, teacher retraining +
    baseline students, a full retrain after every step, and one full retrain of the final data (dashed);
    a star where each policy crosses it."""
    served = [row["requests"] for row in result.rows]
    fig = go.Figure()
    for key, title in BILL_LINES.items():
        fig.add_trace(go.Scatter(
            x=served, y=_bill(result, key), mode="lines+markers", name=title,
            line={"color": STREAM_COLOURS[key]}, marker={"size": 5},
            hovertemplate="after %{x} requests: %{y:,.0f} sample-steps<extra>" + title + "</extra>"))
    fig.add_trace(go.Scatter(
        x=[0, served[-1]], y=[result.final_full_retrain] * 2, mode="lines", name=FINAL_FULL,
        line={"color": "#495057", "dash": "dash", "width": 1.5},
        hovertemplate="%{y:,.0f} sample-steps<extra>" + FINAL_FULL + "</extra>"))
    for key in ("purge", "baseline"):
        when = result.break_even[key]
        if when is not None:
            y = _bill(result, key)[served.index(when)]
            fig.add_trace(go.Scatter(
                x=[when], y=[y], mode="markers", name=f"Break-even: {BILL_LINES[key]}",
                marker={"symbol": "star", "size": 16, "color": STREAM_COLOURS[key],
                        "line": {"color": "#212529", "width": 1}},
                hovertemplate=f"{BILL_LINES[key]} pass one full retrain after %{{x}} requests<extra></extra>"))
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      xaxis={"title": "forget requests served", "rangemode": "tozero"},
                      yaxis={"title": "cumulative sample-steps", "type": "log" if log_y else "linear"})
    return fig


def break_even_text(result: StreamResult) -> str:
    """The sentence under the stream figure: when retraining everything once at the end would have been cheaper."""
    k = result.rows[-1]["requests"]
    parts = []
    for key in ("purge", "baseline"):
        when, title = result.break_even[key], "PURGE" if key == "purge" else "the baseline"
        parts.append(f"than {title} after request {when}" if when is not None
                     else f"than {title} at no point in the {k} requests")
    return (f"**Break-even:** retraining everything once, after the last of the {k} requests "
            f"({result.final_full_retrain:,} sample-steps), would have been cheaper {parts[0]}, and cheaper "
            f"{parts[1]} (each bill: teacher retraining + that method's students).")


def stream_totals(result: StreamResult) -> list[dict]:
    """The headline over the stream: the total of each cost row (teacher retraining; PURGE and baseline
    students only) and PURGE's advantage, the ratio of those two students' totals (cost.advantage_metric).
    Each: {"label", "value", "help"}."""
    totals = result.totals()
    metrics = [{"label": f"{STREAM_ROWS[key]}: total", "value": f"{totals[key]:,}",
                "help": "Sample-steps over the whole stream." + (" The same for every method." if key == "teacher"
                                                                  else " Students only.")}
               for key in ("teacher", "purge", "baseline")]
    return [*metrics, cost.advantage_metric({key: {"sample_steps": value} for key, value in totals.items()})]


def bill_totals(result: StreamResult) -> list[dict]:
    """The totals of the chart's lines (BILL_LINES), no ratio among them: each policy's whole bill."""
    return [{"label": f"{title}: total", "value": f"{_bill(result, key)[-1]:,}"} for key, title in BILL_LINES.items()]
