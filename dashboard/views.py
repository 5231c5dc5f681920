"""Table and image builders for the dashboard: pure functions, no st.* calls.

Every function takes engine output (`plan.describe()`, `training_cost(plan)`, a Plan, a
DatasetBundle) and returns pandas frames or numpy arrays, so each is tested without a browser.
Ids are 0-based in the engine and 1-based here, on screen (DESIGN section 2).
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from purge_engine.plan import METHODS
from purge_engine.vocabulary import (  # noqa: F401 (teacher_names re-exported: views' vocabulary)
    chunk_label,
    student_label,
    teacher_label,
    teacher_names,
    title,
    titles,
)

PAGE_SIZE = 24  # sample images per gallery page
THUMB_PX = 160  # gallery images are upscaled to about this many pixels a side: their column width
TEACHER_TITLE = title("teacher")  # kept for importers: vocabulary.title is the source
COST_ROWS = ("teacher", "purge", "single_teacher", "baseline", "full_retrain")


# -- names -----------------------------------------------------------------------
def id_list(sample_ids, limit: int = 30) -> str:
    """[3, 17, 42] -> "#3, #17, #42"; past `limit` ids, "… (+n more)"."""
    ids = [f"#{int(i)}" for i in sample_ids]
    more = f" … (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _numbers(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _span(first: int, last: int) -> str:
    """1-based step span: (0, 1) -> "1–2", (3, 3) -> "4"."""
    return str(first + 1) if first == last else f"{first + 1}–{last + 1}"


def percent_text(fraction: float | None) -> str:
    """0.9712 -> "97.1%"; None (the accuracy of an empty set, evaluate.accuracy_of) -> "–"."""
    return "–" if fraction is None else f"{fraction:.1%}"


def human_bytes(n: float) -> str:
    """1536 -> "1.5 kB" (powers of 1000, as disks are sold)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# -- plan tables -------------------------------------------------------------------
def layout_metrics(describe: dict) -> dict[str, int | str]:
    """Headline numbers of a plan, label -> value, in display order."""
    student_steps = sorted({len(s["chunks"]) * describe["student_slices"] for s in describe["students"]})
    return {
        "Train pool": describe["n_pool"],
        "Teacher samples": describe["teacher_samples"],
        "Student samples": describe["student_samples"],
        "Steps per teacher": describe["teacher_slices"],
        "Steps per student": str(student_steps[0]) if len(student_steps) == 1
        else f"{student_steps[0]}–{student_steps[-1]}",
    }


def mapping_table(describe: dict) -> pd.DataFrame:
    """One row per student: the teachers that feed it (one chunk each, in order) and its size."""
    rows = [{"Student": student_label(s["student_id"]),
             "Taught by": teacher_names(s["teacher_ids"]),
             "Chunks": len(s["chunks"]),
             "Samples": sum(sum(c["slice_sizes"]) for c in s["chunks"])}
            for s in describe["students"]]
    return pd.DataFrame(rows, columns=["Student", "Taught by", "Chunks", "Samples"])


def teacher_table(describe: dict) -> pd.DataFrame:
    """One row per teacher: shard size, samples per slice, epochs per slice step, student fed."""
    rows = [{"Teacher": teacher_label(t["teacher_id"]),
             "Samples": sum(t["slice_sizes"]),
             "Samples per slice": _numbers(t["slice_sizes"]),
             "Epochs per step": _numbers(t["epochs"]),
             "Passes over shard": t["passes"],
             "Feeds": ", ".join(f"Student {k + 1}" for k in t["students"])}
            for t in describe["teachers"]]
    return pd.DataFrame(rows, columns=["Teacher", "Samples", "Samples per slice", "Epochs per step",
                                       "Passes over shard", "Feeds"])


def student_table(describe: dict) -> pd.DataFrame:
    """One row per (student, chunk): who labels the chunk, its slices, its steps and their epochs.

    Chunk l of a student is labelled by the mean of its first l+1 teachers (section 4.5), and
    trained in steps l*r+1 .. (l+1)*r (1-based), each on everything seen so far.
    """
    r = describe["student_slices"]
    rows = []
    for s in describe["students"]:
        for c in s["chunks"]:
            first, last = c["chunk_id"] * r, c["chunk_id"] * r + r - 1
            rows.append({"Student": student_label(s["student_id"]),
                         "Chunk": chunk_label(c["chunk_id"]),
                         "Labelled by": teacher_names(c["label_teachers"]),
                         "Samples per slice": _numbers(c["slice_sizes"]),
                         "Steps": _span(first, last),
                         "Epochs per step": _numbers(s["epochs"][first:last + 1])})
    return pd.DataFrame(rows, columns=["Student", "Chunk", "Labelled by", "Samples per slice", "Steps",
                                       "Epochs per step"])


def cost_table(cost: dict, form: str = "ensemble") -> pd.DataFrame:
    """Rows of `training_cost(plan)` (or, with form "retraining", `predicted_cost`) with their
    on-screen titles (vocabulary.title in that form).

    Sample-steps = samples x epochs trained; label forward passes = samples x teachers asked
    for a soft label.
    """
    rows = [{"Method": title(key, form),
             "Sample-steps": int(cost[key]["sample_steps"]),
             "Label forward passes": int(cost[key]["label_forwards"]),
             "Constituents": int(cost[key]["constituents"])}
            for key in COST_ROWS if key in cost]
    return pd.DataFrame(rows, columns=["Method", "Sample-steps", "Label forward passes", "Constituents"])


def storage_text(storage: dict) -> str:
    """The Setup page's sentence on a layout's storage, from `storage_estimate(config, plan)` (bytes)."""
    return (f"Storage when fully trained: **{human_bytes(storage['total_bytes'])}** "
            f"({storage['checkpoints']:,} checkpoints: teachers {human_bytes(storage['teacher_checkpoints'])}, "
            f"students of the three methods {human_bytes(storage['student_checkpoints'])}; cached soft labels "
            f"{human_bytes(storage['soft_labels'])}; cached test outputs {human_bytes(storage['outputs'])}). "
            "Every slice step keeps its checkpoint, so a forget "
            "request restarts from the one before the first affected step.")


def default_run_name(config) -> str:
    """The run name a layout suggests: "digits-t8-s4-r2x2-e10-seed0"."""
    return (f"{config.dataset.replace(':', '-')}-t{config.n_teachers}-s{config.n_students}-r{config.teacher_slices}x"
            f"{config.student_slices}-e{config.epochs}-seed{config.seed}")


# -- the sample gallery ----------------------------------------------------------------
def n_pages(n_pool: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(n_pool / page_size))


def page_ids(n_pool: int, page: int, page_size: int = PAGE_SIZE) -> np.ndarray:
    """Sample ids on 1-based gallery page `page` (the last page may be short)."""
    start = (page - 1) * page_size
    return np.arange(start, min(start + page_size, n_pool), dtype=np.int64)


def _one_based(values: np.ndarray) -> pd.Series:
    """0-based ids with -1 for "none" -> 1-based nullable integers (<NA> for none)."""
    return pd.Series(np.where(values < 0, 0, values + 1), dtype="Int64").mask(values < 0)


def _caption(row) -> str:
    teacher = "T –" if pd.isna(row.teacher) else f"T{row.teacher}/s{row.teacher_slice}"
    student = "S –" if pd.isna(row.student) else f"S{row.student}/c{row.chunk}/s{row.student_slice}"
    return f"#{row.sample_id} · {row.label} · {teacher} · {student}"


def sample_grid_frame(bundle, plan, sample_ids) -> pd.DataFrame:
    """Where each sample sits, 1-based, with its class name and a gallery caption.

    Columns: sample_id, label, teacher, teacher_slice, student, chunk, student_slice, caption
    (<NA> where the sample is on no teacher or no student). Caption: "#12 · 7 · T3/s2 · S1/c2/s1".
    """
    ids = np.asarray(sample_ids, dtype=np.int64)
    where = {key: values[ids] for key, values in plan.locations().items()}
    labels = np.asarray(bundle.train_y)[ids]
    frame = pd.DataFrame({"sample_id": ids, "label": [bundle.class_names[int(y)] for y in labels]})
    for key in ("teacher", "teacher_slice", "student", "chunk", "student_slice"):
        frame[key] = _one_based(where[key])
    frame["caption"] = [_caption(row) for row in frame.itertuples()]
    return frame


def available_samples(plan) -> np.ndarray:
    """Sample ids that can still be forgotten: in some teacher or student shard, not forgotten yet."""
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    return np.setdiff1d(used, np.fromiter(plan.forgotten, dtype=np.int64, count=len(plan.forgotten)))


def upscale(images: np.ndarray, size: int = THUMB_PX) -> np.ndarray:
    """(k, H, W, C) uint8 -> (k, H*f, W*f[, C]) by nearest neighbour, f the whole factor nearest
    size/max(H, W). A single channel is dropped so st.image draws greyscale."""
    factor = max(1, round(size / max(images.shape[1], images.shape[2])))
    big = images.repeat(factor, axis=1).repeat(factor, axis=2)
    return big[..., 0] if big.shape[-1] == 1 else big


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
ROLE_TITLES = titles("ensemble")  # kept for importers: vocabulary.title is the source


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
            rows.append({"Method": title(role), "Constituent": name, "Worker": worker, "Steps": _numbers(mine)})
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


# -- a forget request's results (from its ledger record) ----------------------------------------------
def scope_summary(describe: dict, scope: dict, methods) -> list[str]:
    """Sentences saying what a request retrains, from RetrainScope.to_dict()."""
    r = describe["student_slices"]
    teachers = scope["teachers"]
    lines = [("Teachers: " + ", ".join(f"Teacher {int(t) + 1} from step {s + 1}" for t, s in teachers.items()))
             if teachers else "Teachers: none (no selected sample is in a teacher shard)."]
    for method in methods:
        students = scope["students"][method]
        parts = [f"Student {int(k) + 1} from step {s + 1} (chunk {s // r + 1})" for k, s in students.items()]
        kept = describe["n_students"] - len(students)
        lines.append(f"{title(method)}: " + (", ".join(parts) if parts else "no student") +
                     f" · {kept} of {describe['n_students']} kept untouched")
    return lines


def request_cost_table(record: dict) -> pd.DataFrame:
    """Per method: what it retrained, predicted and measured sample-steps and label passes, seconds.

    A student method's row includes the teacher retraining every method needs (the teacher row
    shows that share alone); "Full retrain" is the predicted (or, when run, measured) cost of
    retraining everything from scratch on the reduced data.
    """
    cost, predicted, scope = record.get("cost", {}), record["predicted"], record["scope"]
    teacher = cost.get("teacher", {})
    rows = [_cost_row(title("teacher", "retraining"), len(scope["teachers"]), predicted["teacher"], teacher, None)]
    for method in record["methods"]:
        rows.append(_cost_row(title(method, "retraining"), len(scope["teachers"]) + len(scope["students"][method]),
                              _plus(predicted["teacher"], predicted[method]), _plus(teacher, cost.get(method, {})),
                              predicted["full_retrain"]["sample_steps"]))
    full = (record.get("full_retrain") or {})
    rows.append(_cost_row(title("full_retrain", "retraining"), predicted["full_retrain"]["constituents"],
                          predicted["full_retrain"], full, predicted["full_retrain"]["sample_steps"]))
    return pd.DataFrame(rows)


def shown_cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """request_cost_table as the pages print it: numbers with separators and units, and a cell
    nothing measured (the full retrain, unless run) says "not run" instead of an empty value."""
    def number(value, unit: str = "") -> str:
        if value is None or pd.isna(value):
            return "not run"
        return f"{value:,.2f}{unit}" if unit else f"{int(value):,}"

    shown = frame.copy()
    for column in ("Predicted sample-steps", "Measured sample-steps", "Label forward passes"):
        shown[column] = [number(v) for v in frame[column]]
    shown["Seconds"] = [number(v, " s") for v in frame["Seconds"]]
    return shown


def _plus(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in ("sample_steps", "label_forwards", "seconds") if k in a or k in b}


def _cost_row(title: str, constituents: int, predicted: dict, measured: dict, full_steps: int | None) -> dict:
    """Column "Full retrain ÷ this" = full retrain's sample-steps / this row's (predicted; measured equals it)."""
    steps = measured.get("sample_steps")
    planned = int(predicted["sample_steps"])
    return {"Method": title, "Constituents retrained": constituents,
            "Predicted sample-steps": planned,
            "Measured sample-steps": None if steps is None else int(steps),
            "Label forward passes": measured.get("label_forwards"),
            "Seconds": measured.get("seconds"),
            "Full retrain ÷ this": (f"{full_steps / planned:.1f}×" if full_steps and planned else "–")}


ACCURACY_SETS = (("test", "Test"), ("retained", "Retained train"), ("forgotten", "Forgotten"))


def accuracy_table(record: dict) -> pd.DataFrame:
    """Accuracy (%) before and after on the test split, retained train samples and the forgotten ones."""
    before, after = record["accuracy_before"], record.get("accuracy_after", {})
    rows = []
    for role in before:
        row = {"Model": title(role)}
        for key, name in ACCURACY_SETS:
            row[f"{name} before"] = _percent(before[role].get(key))
            row[f"{name} after"] = _percent(after.get(role, {}).get(key))
        rows.append(row)
    return pd.DataFrame(rows)


MEMBERSHIP_ROLES = ("teacher", *METHODS)


def membership_roles(record: dict) -> list[str]:
    """The roles of a record's membership check, teacher first, then the student methods in order."""
    before = record.get("membership_before", {})
    return [r for r in MEMBERSHIP_ROLES if r in before] + [r for r in before if r not in MEMBERSHIP_ROLES]


def membership_table(record: dict) -> pd.DataFrame:
    """The loss-threshold attack (scoring.membership_check) per role, before and after: its ROC AUC with
    the 95 % bootstrap interval (text, 0.5 = chance), the forgotten samples' mean loss percentile among
    test losses (0-100), and the rates (%) at which it calls forgotten, test and member samples members."""
    before, after = record["membership_before"], record.get("membership_after", {})
    rows = []
    for role in membership_roles(record):
        now = after.get(role, {})
        rows.append({"Model": title(role),
                     "Attack AUC before": auc_text(before[role]), "Attack AUC after": auc_text(now),
                     "Forgotten: loss percentile before": _round(before[role].get("forgotten_percentile")),
                     "Forgotten: loss percentile after": _round(now.get("forgotten_percentile")),
                     "Forgotten: member rate before": _percent(before[role].get("forgotten_member_rate")),
                     "Forgotten: member rate after": _percent(now.get("forgotten_member_rate")),
                     "Test samples: member rate": _percent((now or before[role]).get("test_member_rate")),
                     "Members: member rate": _percent((now or before[role]).get("member_rate"))})
    return pd.DataFrame(rows)


def auc_text(check: dict) -> str:
    """"0.63 (0.58–0.67)": the attack's AUC and its 95 % interval; "–" when not recorded."""
    if check.get("auc") is None:
        return "–"
    if check.get("auc_low") is None:
        return f"{check['auc']:.2f}"
    return f"{check['auc']:.2f} ({check['auc_low']:.2f}–{check['auc_high']:.2f})"


def _round(value) -> float | None:
    return None if value is None else round(value, 1)


def _percent(value) -> float | None:
    return None if value is None else round(100 * value, 1)


def verdict(record: dict) -> tuple[str, str]:
    """("exact" | "differs" | "not claimed" | "not verified", the sentence behind it)."""
    if "exact" not in record:
        return "not verified", "Not verified yet: verification retrains the affected constituents from scratch."
    if record["exact"]:
        return "exact", (f"Exact: {record['parameters_compared']:,} parameters in {record['constituents_compared']} "
                         f"retrained constituents equal a from-scratch run on the reduced data, bit for bit "
                         f"(max |difference| {record['max_abs_diff']:g}).")
    if record.get("equal"):
        return "not claimed", record["reason"]
    return "differs", f"{record['reason']} (max |difference| {record['max_abs_diff']:g})."
