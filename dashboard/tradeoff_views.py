"""Figure and table builders for the Trade-offs page: pure functions, no st.* calls.

Theory curves come from purge_engine.theory (DESIGN section 7), measured points from sweep results
(purge_engine.sweep, the dict stored as results.json), the request stream from
purge_engine.simulate. Ids are 0-based in the engine and 1-based on screen (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import ROLE_COLOURS
from purge_engine import theory, vocabulary
from purge_engine.advantage import advantage
from purge_engine.config import PurgeConfig
from purge_engine.events import PhaseEvent, StepEvent
from purge_engine.plan import make_plan
from purge_engine.simulate import StreamResult
from purge_engine.storage import storage_estimate
from purge_engine.sweep import SweepGrid

SLICE_COLOURS = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d")
NT_DASHES = ("solid", "dash", "dot", "dashdot")
MB = 1e6
DODGE = 0.08  # log2 units between the measured points of neighbouring (N_t, r) groups
TEACHER_SIDE, STUDENT_SIDE = "Teacher-side speed-up", "Student-side speed-up"
FINAL_FULL = "One full retrain of the final data"


def slice_colour(student_slices: int, slices: list[int]) -> str:
    return SLICE_COLOURS[sorted(slices).index(student_slices) % len(SLICE_COLOURS)]


# -- theory ---------------------------------------------------------------------------------------
def theory_frame(n_teachers: int, slices, n_students=None) -> pd.DataFrame:
    """Long frame of the closed forms: one row per (N_s, r); N_s defaults to the divisors of N_t.

    Columns: N_t, N_s, r, c, teacher_side (PURGE over the baseline student, one teacher-side
    request), student_side (over retraining that student from scratch, one student-side request)."""
    values = theory.divisors(n_teachers) if n_students is None else sorted(set(n_students))
    rows = [theory.theory_row(n_teachers, s, r) for r in sorted(set(slices)) for s in values]
    return pd.DataFrame([{"N_t": row.n_teachers, "N_s": row.n_students, "r": row.student_slices,
                          "c": row.teachers_per_student, "teacher_side": row.teacher_side_speedup,
                          "student_side": row.student_side_speedup} for row in rows],
                        columns=["N_t", "N_s", "r", "c", "teacher_side", "student_side"])


def sweep_curves(measured: pd.DataFrame) -> pd.DataFrame:
    """Closed-form curves for every (N_t, r) of a sweep, at the divisors of N_t and the measured N_s."""
    frames = [theory_frame(int(nt), sorted(set(rows["r"])), sorted(set(rows["N_s"]) | set(theory.divisors(int(nt)))))
              for nt, rows in measured.groupby("N_t")]
    return pd.concat(frames, ignore_index=True)


def layout_config(base: PurgeConfig, n_teachers: int, n_students: int, student_slices: int) -> PurgeConfig:
    return base.replace(n_teachers=n_teachers, n_students=n_students, student_slices=student_slices)


def layout_storage(config: PurgeConfig, n_pool: int) -> tuple[int | None, float | None, str | None]:
    """(checkpoint files, megabytes, None) for a layout, or (None, None, why) when the data cannot hold it."""
    try:
        sizes = storage_estimate(config, make_plan(config, n_pool))
    except ValueError as err:
        return None, None, str(err)
    return sizes["checkpoints"], sizes["total_bytes"] / MB, None


THEORY_COLUMNS = {
    "teacher": ("T×", "Teacher-side speed-up: PURGE's students over the baseline student, one teacher-side "
                      "request (closed form)."),
    "student": ("S×", "Student-side speed-up: PURGE over retraining that student from scratch, one student-side "
                      "request (closed form)."),
    "checkpoints": ("ckpts", "Checkpoint files of a trained run: every step of every teacher and of the three "
                             "student methods."),
    "storage": ("MB", "Megabytes on disk: checkpoints and soft labels."),
}
THEORY_LEGEND = "T× / S×: teacher-side / student-side speed-up; ckpts: checkpoint files; MB: storage"


def theory_column(kind: str, student_slices: int) -> str:
    """Column name of the theory table: "T× r=2", "ckpts r=1", ... (see THEORY_LEGEND)"""
    return f"{THEORY_COLUMNS[kind][0]} r={student_slices}"


def _theory_kind(column: str) -> str | None:
    return next((k for k, (title, _) in THEORY_COLUMNS.items() if column.startswith(title + " r=")), None)


def theory_column_help(column: str) -> str | None:
    """The tooltip of a theory-table column."""
    kind = _theory_kind(column)
    return {"N_s": "Students.", "c": "Teachers per student, N_t / N_s."}.get(column) if kind is None \
        else THEORY_COLUMNS[kind][1]


def theory_column_format(column: str) -> str | None:
    """printf-style format of a theory-table column for st.column_config.NumberColumn."""
    return {"c": "%.3g", "teacher": "%.2f×", "student": "%.2f×", "checkpoints": "%d", "storage": "%.1f"}.get(
        _theory_kind(column) or column)


def theory_table(n_teachers: int, slices, base: PurgeConfig, n_pool: int) -> tuple[pd.DataFrame, list[str]]:
    """One row per divisor N_s of N_t: c, then per r both speed-ups, checkpoint files and storage (MB) of a
    run with that layout (base config otherwise). Returns the frame and why any storage is missing."""
    frame = theory_frame(n_teachers, slices)
    table = frame[["N_s", "c"]].drop_duplicates("N_s").set_index("N_s")
    slices = sorted(set(slices))
    storage = {r: [layout_storage(layout_config(base, n_teachers, s, r), n_pool) for s in table.index]
               for r in slices}
    for kind, column in (("teacher", "teacher_side"), ("student", "student_side")):
        for r in slices:
            table[theory_column(kind, r)] = frame[frame["r"] == r].set_index("N_s")[column]
    for r in slices:
        table[theory_column("checkpoints", r)] = pd.array([files for files, _, _ in storage[r]], dtype="Int64")
    for r in slices:
        table[theory_column("storage", r)] = [mb for _, mb, _ in storage[r]]
    return table.reset_index(), [note for r in slices if (note := _storage_note(r, table.index, storage[r]))]


def _storage_note(r: int, n_students, storage) -> str | None:
    """One note per r: the N_s values whose layout the data cannot hold, and the first one's reason."""
    failed = [(s, why) for s, (_, _, why) in zip(n_students, storage, strict=True) if why]
    return f"r = {r}, N_s = {', '.join(str(s) for s, _ in failed)}: {failed[0][1]}" if failed else None


# -- sweep results ---------------------------------------------------------------------------------
def sweep_label(results: dict) -> str:
    """"2026-11-23 17:41 · digits · N_t 8 · N_s 1, 2, 4, 8 · r 1 · K 2" for the sweep picker."""
    grid = SweepGrid.from_dict(results["grid"])  # reads the flat grids of older sweeps too
    when = datetime.fromisoformat(results["started"]).strftime("%Y-%m-%d %H:%M UTC")

    def values(name: str) -> str:
        return ", ".join(str(v) for v in sorted(set(getattr(grid, name))))

    return (f"{when} · {grid.base.dataset} · N_t {values('n_teachers')} · N_s {values('n_students')} · "
            f"r {values('student_slices')} · {grid.base.epochs} epochs · K {grid.requests}")


def per_layout(on_event):
    """A job's progress keeps a row of steps per (role, constituent); a sweep meets each pair once per
    layout, with another number of steps, so its step events are keyed by layout too: the role becomes
    "purge (N_t = 8, N_s = 2, r = 1)", from the layout's PhaseEvent detail."""
    layout = {"label": ""}

    def forward(event) -> None:
        if isinstance(event, PhaseEvent):
            layout["label"] = event.detail
        elif isinstance(event, StepEvent):
            event = replace(event, role=f"{event.role} ({layout['label']})")
        on_event(event)

    return forward


MEASURED_HELP = {
    "c": "Teachers per student, N_t / N_s.",
    "T×": "Teacher-side speed-up measured: the baseline students' sample-steps over PURGE's, summed over the "
          "teacher-side requests.",
    "S×": "Student-side speed-up measured: retraining that student from scratch over PURGE's sample-steps, summed "
          "over the student-side requests.",
    "theory": "The closed form (theory.py).",
    "min": "The smallest single request.", "max": "The largest single request.",
    "%": "Test accuracy after training, before any request.",
    "checkpoints": "Checkpoint files of the trained layout.", "MB": "Megabytes on disk.",
    "seconds": "Wall seconds: training, evaluating and serving the requests.",
}
SIDES = ("T×", "S×")  # teacher-side, student-side speed-up (THEORY_LEGEND)
LAYOUT_COLUMNS = ["N_t", "N_s", "r"]
ROLE_SHORT = {"teacher": "teachers %", "purge": "PURGE %", "single_teacher": "single-teacher %",
              "baseline": "baseline %"}


def measured_column_help(column: str) -> str | None:
    """The tooltip of a measured_frame column."""
    word = column.split(" ")[-1]
    return MEASURED_HELP.get(column) or MEASURED_HELP.get(word)


def measured_column_format(column: str) -> str | None:
    """printf-style format of a measured_frame column for st.column_config.NumberColumn."""
    if column == "c":
        return "%.3g"
    if column.startswith(SIDES):
        return "%.2f×"
    return {"%": "%.1f", "MB": "%.1f", "seconds": "%.0f"}.get(column.split(" ")[-1])


def speedup_columns(measured: pd.DataFrame) -> list[str]:
    """The layout and speed-up columns of measured_frame (the rest: accuracy_columns)."""
    return [*LAYOUT_COLUMNS, "c", *(c for c in measured.columns if c.startswith(SIDES))]


def accuracy_columns(measured: pd.DataFrame) -> list[str]:
    """The layout, accuracy, checkpoint, storage and seconds columns of measured_frame."""
    return [*LAYOUT_COLUMNS, *(c for c in measured.columns if c not in speedup_columns(measured))]


def measured_frame(results: dict) -> pd.DataFrame:
    """One row per layout: measured speed-ups ("T×" teacher side, "S×" student side: the ratio of totals;
    "... min"/"... max" per request) beside the closed forms ("... theory"), test accuracy per ensemble
    (%), checkpoints, storage (MB) and seconds."""
    rows = []
    for rec in results["layouts"]:
        layout, summary = rec["layout"], rec["summary"]
        row = {"N_t": layout["n_teachers"], "N_s": layout["n_students"], "r": layout["student_slices"],
               "c": rec["teachers_per_student"]}
        for side, title in zip(("teacher", "student"), SIDES, strict=True):
            row.update({title: summary[side]["speedup"], f"{title} min": summary[side]["min"],
                        f"{title} max": summary[side]["max"], f"{title} theory": rec["theory"][f"{side}_side_speedup"]})
        row.update({ROLE_SHORT[role]: _percent(rec["accuracy"].get(role)) for role in ROLE_SHORT})
        row.update({"checkpoints": rec["checkpoints"], "MB": rec["storage_bytes"] / MB, "seconds": rec["seconds"]})
        rows.append(row)
    return pd.DataFrame(rows)


def request_frame(results: dict) -> pd.DataFrame:
    """One row per forget request served in the sweep: where the sample sat, measured and predicted
    sample-steps per method, the speed-up and the seconds."""
    rows = []
    for rec in results["layouts"]:
        layout = rec["layout"]
        for req in rec["requests"]:
            measured, predicted = req["measured"], req["predicted"]
            rows.append({
                "N_t": layout["n_teachers"], "N_s": layout["n_students"], "r": layout["student_slices"],
                "Side": req["side"], "Sample id": req["sample_id"], "Teacher": _one_based(req["teacher_id"]),
                "Student": _one_based(req["student_id"]),
                "Teacher sample-steps": measured["teacher"]["sample_steps"],
                "PURGE sample-steps": measured["purge"]["sample_steps"],
                "PURGE predicted": predicted["purge"],
                "Baseline sample-steps": measured["baseline"]["sample_steps"],
                "Baseline predicted": predicted["baseline"],
                "Reference sample-steps": req["reference_sample_steps"], "Speed-up": req["speedup"],
                "PURGE seconds": measured["purge"]["seconds"], "Baseline seconds": measured["baseline"]["seconds"]})
    return pd.DataFrame(rows)


def accuracy_frame(results: dict) -> pd.DataFrame:
    """Long frame: N_t, N_s, r, role (role id; vocabulary.title names it), accuracy (%) of each ensemble
    after training."""
    rows = [{"N_t": rec["layout"]["n_teachers"], "N_s": rec["layout"]["n_students"],
             "r": rec["layout"]["student_slices"], "role": role, "accuracy": _percent(value)}
            for rec in results["layouts"] for role, value in rec["accuracy"].items()]
    return pd.DataFrame(rows, columns=["N_t", "N_s", "r", "role", "accuracy"])


def _percent(value) -> float | None:
    return None if value is None else 100.0 * value


def _one_based(value) -> int | None:
    return None if value is None else int(value) + 1


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
STREAM_LINES = {"purge": vocabulary.title("purge", "short"), "baseline": vocabulary.title("baseline", "short"),
                "full_retrain": f"{vocabulary.title('full_retrain', 'short')} after every step"}
STREAM_COLOURS = {role: ROLE_COLOURS[role] for role in STREAM_LINES}


def stream_frame(result: StreamResult) -> pd.DataFrame:
    """One row per served step: requests served, teachers hit (1-based), cost and cumulative cost."""
    rows = [{"Step": row["step"], "Requests served": row["requests"],
             "Sample ids": ", ".join(str(i) for i in row["sample_ids"]),
             "Teachers hit": ", ".join(str(t + 1) for t in row["teacher_ids"]),
             "Teacher sample-steps": row["teacher"],
             **{f"{title} sample-steps": row[key] for key, title in STREAM_LINES.items()},
             **{f"{title} cumulative": row[f"cumulative_{key}"] for key, title in STREAM_LINES.items()}}
            for row in result.rows]
    return pd.DataFrame(rows)


def stream_figure(result: StreamResult, log_y: bool = True) -> go.Figure:
    """Cumulative sample-steps against requests served: PURGE, the baseline, a full retrain after every
    step, and one full retrain of the final data (dashed); a star where each method crosses it."""
    frame = stream_frame(result)
    fig = go.Figure()
    for key, title in STREAM_LINES.items():
        fig.add_trace(go.Scatter(
            x=frame["Requests served"], y=frame[f"{title} cumulative"], mode="lines+markers", name=title,
            line={"color": STREAM_COLOURS[key]}, marker={"size": 5},
            hovertemplate="after %{x} requests: %{y:,.0f} sample-steps<extra>" + title + "</extra>"))
    fig.add_trace(go.Scatter(
        x=[0, frame["Requests served"].iloc[-1]], y=[result.final_full_retrain] * 2, mode="lines", name=FINAL_FULL,
        line={"color": "#495057", "dash": "dash", "width": 1.5},
        hovertemplate="%{y:,.0f} sample-steps<extra>" + FINAL_FULL + "</extra>"))
    for key in ("purge", "baseline"):
        when = result.break_even[key]
        if when is not None:
            y = frame.loc[frame["Requests served"] == when, f"{STREAM_LINES[key]} cumulative"].iloc[0]
            fig.add_trace(go.Scatter(
                x=[when], y=[y], mode="markers", name=f"Break-even: {STREAM_LINES[key]}",
                marker={"symbol": "star", "size": 16, "color": STREAM_COLOURS[key],
                        "line": {"color": "#212529", "width": 1}},
                hovertemplate=f"{STREAM_LINES[key]} passes one full retrain after %{{x}} requests<extra></extra>"))
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
            f"{parts[1]}.")


def stream_totals(result: StreamResult) -> dict[str, str]:
    """Metric values: total sample-steps per policy (teacher retraining included), and PURGE's advantage
    as every page defines it (advantage.py): baseline students over PURGE students, teachers left out."""
    totals = result.totals()
    teacher = sum(row["teacher"] for row in result.rows)
    ratio = advantage({m: {"sample_steps": totals[m] - teacher} for m in ("purge", "baseline")})
    return {**{f"{STREAM_LINES[k]}: total": f"{v:,}" for k, v in totals.items()},
            "PURGE's advantage": "–" if ratio is None else f"{ratio:.2f}×"}
