"""The Setup page's tables and sentences: a plan's headline numbers, its student chunks, its storage, the
run name a layout suggests. Pure: no st.* calls; ids are 1-based on screen (DESIGN section 2).
"""

from __future__ import annotations

import pandas as pd

from dashboard.shared.views import numbers_text
from purge_engine import chunk_label, student_label, teacher_names


def _span(first: int, last: int) -> str:
    """1-based step span: (0, 1) -> "1–2", (3, 3) -> "4"."""
    return str(first + 1) if first == last else f"{first + 1}–{last + 1}"


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
                         "Samples per slice": numbers_text(c["slice_sizes"]),
                         "Steps": _span(first, last),
                         "Epochs per step": numbers_text(s["epochs"][first:last + 1])})
    return pd.DataFrame(rows, columns=["Student", "Chunk", "Labelled by", "Samples per slice", "Steps",
                                       "Epochs per step"])


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
