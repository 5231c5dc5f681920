"""The constituents x steps grid of a job (Setup, Forget, Learn): which steps a request keeps, restores and
retrains, as HTML, and where each step ran. Pure: no st.* calls.
"""

from __future__ import annotations

import html

import pandas as pd

from dashboard.shared.views import numbers_text
from purge_engine import METHODS, student_label, teacher_label, title

# -- the constituents x steps grid ---------------------------------------------------------------
PLANNED = "planned"  # preview only: this step will be retrained
CELL_STYLE = {  # state -> (symbol, background, title)
    "pending": ("", "#ffffff", "not reached yet"),  # an empty, dashed outline (GRID_CSS)
    "kept": ("=", "#ced4da", "kept: checkpoint reused untouched"),  # solid grey, "=": the same as before
    PLANNED: ("↻", "#ffe8cc", "will retrain"),
    "restored": ("↺", "#a5d8ff", "restored from checkpoint"),
    "retraining": ("⟳", "#ffa94d", "retraining now"),
    "done": ("✓", "#8ce99a", "retrained and checkpointed"),
}


def grid_shape(plan, roles) -> dict[tuple[str, int], int]:
    """(role, constituent) -> number of slice steps, for the teacher and the given student methods."""
    shape = {("teacher", i): plan.teacher_slices for i in range(plan.n_teachers)}
    for role in roles:
        if role != "teacher":
            shape.update({(role, k): plan.student_steps(k) for k in range(plan.n_students)})
    return shape


def planned_cells(plan, scope, roles) -> dict[tuple[str, int], list[str]]:
    """The grid a forget request will produce, before it runs: steps before the first affected
    one kept (the one just before it restored), the rest retrained."""
    first = {("teacher", i): s for i, s in scope.teachers.items()}
    for method, students in scope.students.items():
        first.update({(method, k): s for k, s in students.items()})
    cells = {}
    for key, n in grid_shape(plan, roles).items():
        start = first.get(key, n)
        cells[key] = ["kept"] * start + [PLANNED] * (n - start)
        if 0 < start < n:
            cells[key][start - 1] = "restored"
    return cells


def retrain_grid_html(shape: dict[tuple[str, int], int], cells: dict[tuple[str, int], list[str]],
                      workers: dict[tuple[str, int], dict[int, str]] | None = None) -> str:
    """An HTML table per role: a row per constituent, a cell per slice step, coloured by state.

    Each cell carries data-state="<state>" (tests and the browser read it) and a tooltip; a step
    that ran on a worker (workers[(role, constituent)][step] = "host:pid") also carries
    data-worker and names the worker in its tooltip.
    """
    workers = workers or {}
    blocks = []
    for role in dict.fromkeys(role for role, _ in shape):
        keys = [key for key in shape if key[0] == role]
        width = max(shape[key] for key in keys)
        header = "".join(f"<th>{m + 1}</th>" for m in range(width))
        rows = [_grid_row(role, c, shape[(role, c)], width, cells.get((role, c)), workers.get((role, c), {}))
                for _, c in keys]
        blocks.append(f'<div class="purge-grid" data-role="{role}"><b>{title(role)}</b>'
                      f'<table><tr><th>step →</th>{header}</tr>{"".join(rows)}</table></div>')
    return GRID_CSS + "".join(blocks) + grid_legend_html()


def _grid_row(role: str, constituent: int, n_steps: int, width: int, states: list[str] | None,
              workers: dict[int, str]) -> str:
    states = states or ["pending"] * n_steps
    name = teacher_label(constituent) if role == "teacher" else student_label(constituent)
    cells = "".join(_grid_cell(state, workers.get(step, "")) for step, state in enumerate(states))
    return f"<tr><th>{name}</th>{cells}{'<td></td>' * (width - n_steps)}</tr>"


def _grid_cell(state: str, worker: str = "") -> str:
    symbol, colour, title = CELL_STYLE[state]
    where = f' data-worker="{html.escape(worker)}"' if worker else ""
    tooltip = html.escape(f"{title} · on {worker}" if worker else title)
    return f'<td data-state="{state}"{where} title="{tooltip}" style="background:{colour}">{symbol}</td>'


def worker_table(workers: dict[tuple[str, int], dict[int, str]]) -> pd.DataFrame:
    """Which worker trained each constituent's steps: a row per (constituent, worker), 1-based steps.

    Empty when every step ran in this process (StepEvent.worker is empty there).
    """
    order = ("teacher", *METHODS)  # as the grid draws them, whatever order the workers finished in
    rows = []
    for role, constituent in sorted(workers, key=lambda key: (order.index(key[0]), key[1])):
        steps = workers[(role, constituent)]
        name = teacher_label(constituent) if role == "teacher" else student_label(constituent)
        for worker in dict.fromkeys(steps.values()):
            mine = sorted(step + 1 for step, w in steps.items() if w == worker)
            rows.append({"Method": title(role), "Constituent": name, "Worker": worker, "Steps": numbers_text(mine)})
    return pd.DataFrame(rows, columns=["Method", "Constituent", "Worker", "Steps"])


def execution_text(executor: str, ray_address: str | None, cluster: dict | None) -> str:
    """Where this session's jobs run, for the sidebar. cluster: RayExecutor.describe() once Ray is up."""
    if executor == "lanes":
        return "Jobs train W constituent chains at once, as lanes of one batched model, in this process."
    if executor == "auto":
        return ("Jobs run in this process, on each run's own path once it is trained (lanes with its W, or one "
                "chain after another); a new run trains as lanes on a GPU, one chain after another on a CPU.")
    if executor != "ray":
        return "Jobs run in this process."
    where = f"the Ray cluster at `{ray_address}`" if ray_address else "a local Ray cluster"
    if cluster is None:
        return f"Jobs run on {where}; it starts with the first job."
    nodes, cpus, gpus = cluster["nodes"], cluster["cpus"], cluster["gpus"]
    groups = f" Each task trains {cluster['lanes']} chains as one lane group." if cluster.get("lanes") else ""
    return (f"Jobs run on {where}: {nodes} node{'s' * (nodes != 1)} · {cpus} CPU{'s' * (cpus != 1)} · "
            f"{gpus} GPU{'s' * (gpus != 1)}.{groups}")


def grid_legend_html() -> str:
    items = "".join(f'<span data-legend="{state}" style="background:{colour}">{symbol or "&nbsp;"}</span> '
                    f'{title} &nbsp; ' for state, (symbol, colour, title) in CELL_STYLE.items())
    return f'<div class="purge-grid-legend">{items}</div>'


def grid_counts(cells: dict[tuple[str, int], list[str]]) -> dict[str, int]:
    """How many cells are in each state."""
    counts = dict.fromkeys(CELL_STYLE, 0)
    for states in cells.values():
        for state in states:
            counts[state] += 1
    return counts


GRID_CSS = """<style>
.purge-grid { display: inline-block; vertical-align: top; margin: 0 1.5rem 0.8rem 0; }
.purge-grid table { border-collapse: separate; border-spacing: 3px; font-size: 0.8rem; }
.purge-grid th { font-weight: normal; color: #555; text-align: right; padding: 0 4px; }
.purge-grid td { width: 1.6rem; height: 1.4rem; text-align: center; border-radius: 3px; }
.purge-grid td[data-state="pending"], .purge-grid-legend span[data-legend="pending"] {
  outline: 1px dashed #868e96; outline-offset: -1px; }
.purge-grid-legend { font-size: 0.8rem; color: #444; margin-top: 0.3rem; }
.purge-grid-legend span { display: inline-block; min-width: 1.2rem; text-align: center; border-radius: 3px; }
</style>"""
