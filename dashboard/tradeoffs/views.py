"""Table builders for the Trade-offs page: the closed-form table and the measured sweep results. Pure
functions, no st.* calls.

Theory comes from purge_engine.theory (DESIGN section 7), measured points from sweep results
(purge_engine.sweep, the dict stored as results.json). Ids are 0-based in the engine and 1-based on
screen (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd

from purge_engine import PhaseEvent, PurgeConfig, StepEvent, SweepGrid, make_plan, storage_estimate, theory

SLICE_COLOURS = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c940d")
NT_DASHES = ("solid", "dash", "dot", "dashdot")
MB = 1e6
DODGE = 0.08  # log2 units between the measured points of neighbouring (N_t, r) groups

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
