"""The vocabulary of DESIGN section 2 in code: what each role and position is called on screen.

Pure (no torch, no numpy). Ids are 0-based in code and 1-based on screen. Tables, colours and
legends are keyed by role id ("teacher", a student method, "full_retrain"), never by the strings
here, so renaming a title changes what people read and nothing else.

Each role has three titles:
  short       a legend entry or column prefix ("PURGE", "Baseline (SISA)")
  ensemble    the trained ensemble, where accuracy is shown ("Teacher ensemble", "PURGE student")
  retraining  its row in a forget request's cost ("Teacher retraining", "PURGE students"): a method's row
              counts its students only, the teachers have their own row
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Titles:
    short: str
    ensemble: str
    retraining: str


TITLES: dict[str, Titles] = {
    "teacher": Titles("Teachers", "Teacher ensemble", "Teacher retraining"),
    "purge": Titles("PURGE", "PURGE student", "PURGE students"),
    "single_teacher": Titles("Single-teacher", "Single-teacher PURGE", "Single-teacher PURGE students"),
    "baseline": Titles("Baseline (SISA)", "Baseline student (SISA)", "Baseline students (SISA)"),
    "full_retrain": Titles("Full retrain", "Full retrain", "Full retrain"),
}
FORMS = ("short", "ensemble", "retraining")


def title(role: str, form: str = "ensemble") -> str:
    """The on-screen name of a role ("teacher", a method, "full_retrain") in one of FORMS.
    An unknown role (a sweep's "purge (N_s = 4)" row) is shown as it is."""
    if form not in FORMS:
        raise ValueError(f"form: got {form!r}, must be one of {', '.join(FORMS)}")
    titles = TITLES.get(role)
    return role if titles is None else getattr(titles, form)


def titles(form: str = "ensemble") -> dict[str, str]:
    """role -> title in one form, in the order of TITLES."""
    return {role: title(role, form) for role in TITLES}


# -- positions: 0-based in code, 1-based on screen --------------------------------------------
def teacher_label(teacher_id: int) -> str:
    return f"Teacher {int(teacher_id) + 1}"


def student_label(student_id: int) -> str:
    return f"Student {int(student_id) + 1}"


def chunk_label(chunk_id: int) -> str:
    return f"chunk {int(chunk_id) + 1}"


def slice_label(slice_id: int) -> str:
    return f"slice {int(slice_id) + 1}"


def step_label(step: int) -> str:
    return f"step {int(step) + 1}"


def constituent_label(role: str, constituent: int) -> str:
    """"Teacher 3" for a teacher; "PURGE student 2", "Baseline (SISA) student 2" for a student method."""
    if role == "teacher":
        return teacher_label(constituent)
    return f"{title(role, 'short')} {student_label(constituent).lower()}"


def teacher_names(teacher_ids) -> str:
    """[0, 1, 2] -> "Teachers 1–3"; [4] -> "Teacher 5"; [0, 2] -> "Teachers 1, 3"; [] -> "no teacher"."""
    ids = [int(t) + 1 for t in teacher_ids]
    if not ids:
        return "no teacher"
    if len(ids) == 1:
        return f"Teacher {ids[0]}"
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"Teachers {ids[0]}–{ids[-1]}"
    return "Teachers " + ", ".join(map(str, ids))
