"""Table and image builders for the dashboard: pure functions, no st.* calls.

Every function takes engine output (`plan.describe()`, `training_cost(plan)`, a Plan, a
DatasetBundle) and returns pandas frames or numpy arrays, so each is tested without a browser.
Ids are 0-based in the engine and 1-based here, on screen (DESIGN section 2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from purge_engine.plan import METHOD_TITLES

PAGE_SIZE = 24  # sample images per gallery page
THUMB_PX = 160  # gallery images are upscaled to about this many pixels a side: their column width
TEACHER_TITLE = "Teachers (SISA ensemble)"
COST_ROWS = ("teacher", "purge", "single_teacher", "baseline", "full_retrain")


# -- names -----------------------------------------------------------------------
def teacher_names(teacher_ids) -> str:
    """[0, 1, 2] -> "Teachers 1–3"; [4] -> "Teacher 5"; [0, 2] -> "Teachers 1, 3"."""
    ids = [int(t) + 1 for t in teacher_ids]
    if len(ids) == 1:
        return f"Teacher {ids[0]}"
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"Teachers {ids[0]}–{ids[-1]}"
    return "Teachers " + ", ".join(map(str, ids))


def _numbers(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _span(first: int, last: int) -> str:
    """1-based step span: (0, 1) -> "1–2", (3, 3) -> "4"."""
    return str(first + 1) if first == last else f"{first + 1}–{last + 1}"


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
    rows = [{"Student": f"Student {s['student_id'] + 1}",
             "Taught by": teacher_names(s["teacher_ids"]),
             "Chunks": len(s["chunks"]),
             "Samples": sum(sum(c["slice_sizes"]) for c in s["chunks"])}
            for s in describe["students"]]
    return pd.DataFrame(rows, columns=["Student", "Taught by", "Chunks", "Samples"])


def teacher_table(describe: dict) -> pd.DataFrame:
    """One row per teacher: shard size, samples per slice, epochs per slice step, student fed."""
    rows = [{"Teacher": f"Teacher {t['teacher_id'] + 1}",
             "Samples": sum(t["slice_sizes"]),
             "Samples per slice": _numbers(t["slice_sizes"]),
             "Epochs per step": _numbers(t["epochs"]),
             "Feeds": ", ".join(f"Student {k + 1}" for k in t["students"])}
            for t in describe["teachers"]]
    return pd.DataFrame(rows, columns=["Teacher", "Samples", "Samples per slice", "Epochs per step", "Feeds"])


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
            rows.append({"Student": f"Student {s['student_id'] + 1}",
                         "Chunk": f"chunk {c['chunk_id'] + 1}",
                         "Labelled by": teacher_names(c["label_teachers"]),
                         "Samples per slice": _numbers(c["slice_sizes"]),
                         "Steps": _span(first, last),
                         "Epochs per step": _numbers(s["epochs"][first:last + 1])})
    return pd.DataFrame(rows, columns=["Student", "Chunk", "Labelled by", "Samples per slice", "Steps",
                                       "Epochs per step"])


def cost_table(cost: dict) -> pd.DataFrame:
    """Rows of `training_cost(plan)` (or `predicted_cost`) with their on-screen titles.

    Sample-steps = samples x epochs trained; label forward passes = samples x teachers asked
    for a soft label.
    """
    titles = {"teacher": TEACHER_TITLE, **METHOD_TITLES}
    rows = [{"Method": titles[key],
             "Sample-steps": int(cost[key]["sample_steps"]),
             "Label forward passes": int(cost[key]["label_forwards"]),
             "Constituents": int(cost[key]["constituents"])}
            for key in COST_ROWS if key in cost]
    return pd.DataFrame(rows, columns=["Method", "Sample-steps", "Label forward passes", "Constituents"])


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
