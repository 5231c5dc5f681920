"""Table and image builders several pages share: pure functions, no st.* calls.

Every function takes engine output (`plan.describe()`, `training_cost(plan)`, a Plan, a
DatasetBundle, a ledger record) and returns pandas frames, numpy arrays or text, so each is tested
without a browser. Ids are 0-based in the engine and 1-based here, on screen (DESIGN section 2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dashboard.shared import cost
from purge_engine import METHODS, student_label, teacher_label, teacher_names, title

PAGE_SIZE = 24  # sample images per gallery page
THUMB_PX = 160  # gallery images are upscaled to about this many pixels a side: their column width
TEACHER_TITLE = title("teacher")  # kept for importers: vocabulary.title is the source


# -- names -----------------------------------------------------------------------
def numbers_text(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def percent_text(fraction: float | None) -> str:
    """0.9712 -> "97.1%"; None (the accuracy of an empty set, evaluate.accuracy_of) -> "–"."""
    return "–" if fraction is None else f"{fraction:.1%}"


# -- plan tables -------------------------------------------------------------------
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
             "Samples per slice": numbers_text(t["slice_sizes"]),
             "Epochs per step": numbers_text(t["epochs"]),
             "Passes over shard": t["passes"],
             "Feeds": ", ".join(f"Student {k + 1}" for k in t["students"])}
            for t in describe["teachers"]]
    return pd.DataFrame(rows, columns=["Teacher", "Samples", "Samples per slice", "Epochs per step",
                                       "Passes over shard", "Feeds"])


# -- label composition ---------------------------------------------------------------------------
def label_composition_table(plan) -> pd.DataFrame:
    """One row per (student, chunk): whose softmax is averaged into its soft labels, per method.

    Reads plan.labelling_teachers, so a teacher emptied by forgetting drops out of the mean."""
    rows = []
    r = plan.student_slices
    for k in range(plan.n_students):
        for l_ in range(plan.n_chunks(k)):
            row = {"Student": f"Student {k + 1}", "Chunk": f"chunk {l_ + 1}",
                   "Samples": int(sum(s.size for s in plan.student_shards[k][l_])),
                   "Steps": f"{l_ * r + 1}–{l_ * r + r}" if r > 1 else str(l_ + 1)}
            for method in METHODS:
                teachers = plan.labelling_teachers(method, k, l_)
                row[title(method)] = _mean_of(teachers)
            rows.append(row)
    return pd.DataFrame(rows, columns=["Student", "Chunk", "Samples", "Steps", *(title(m) for m in METHODS)])


def _mean_of(teachers) -> str:
    if not teachers:
        return "uniform (no teacher left)"
    if len(teachers) == 1:
        return teacher_names(teachers)
    return f"{teacher_names(teachers)} (1/{len(teachers)} each)"


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


def upscale(images: np.ndarray, size: int = THUMB_PX) -> np.ndarray:
    """(k, H, W, C) uint8 -> (k, H*f, W*f[, C]) by nearest neighbour, f the whole factor nearest
    size/max(H, W). A single channel is dropped so st.image draws greyscale."""
    factor = max(1, round(size / max(images.shape[1], images.shape[2])))
    big = images.repeat(factor, axis=1).repeat(factor, axis=2)
    return big[..., 0] if big.shape[-1] == 1 else big


# -- a forget request's cost and verdict (from its ledger record) ----------------------------------------------
def request_cost_table(record: dict) -> pd.DataFrame:
    """A served request's cost table (cost.cost_frame): teacher retraining, each method's students only,
    predicted beside measured, and the full retrain (measured when it was run)."""
    return cost.cost_frame(record["predicted"], record["methods"], record.get("cost", {}), record.get("full_retrain"))


def shown_cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """request_cost_table as the pages print it (cost.shown_cost_frame)."""
    return cost.shown_cost_frame(frame)


def verdict(record: dict) -> tuple[str, str]:
    """("exact" | "differs" | "not claimed" | "not verified", the sentence behind it). The sentence never
    repeats the word: a page draws "**Exact.** <sentence>"."""
    if "exact" not in record:
        return "not verified", ("Verify trains a from-scratch reference (every constituent, on the data without the "
                                "forgotten samples, with the same seeds) and compares it with this run, bit for bit.")
    if record["exact"]:
        return "exact", (f"{record['parameters_compared']:,} parameters in all {record['constituents_compared']} "
                         f"constituents equal a from-scratch run on the reduced data, bit for bit "
                         f"(max |difference| {record['max_abs_diff']:g}).")
    reason = record["reason"].removeprefix("exactness not claimed: ").removeprefix("not exact: ")
    if record.get("equal"):
        return "not claimed", reason
    return "differs", f"{reason} (max |difference| {record['max_abs_diff']:g})."
