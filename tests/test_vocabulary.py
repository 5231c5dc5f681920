"""vocabulary.py: on-screen names of roles (three forms each) and 1-based positions (DESIGN section 2)."""

import pytest

from purge_engine import vocabulary as v
from purge_engine.constituents import ROLES
from purge_engine.plan import METHOD_TITLES, METHODS


def test_every_role_has_its_three_forms_and_the_design_names():
    assert set(v.TITLES) == {"teacher", *METHODS, "full_retrain"}
    assert v.title("baseline") == "Baseline student (SISA)"  # DESIGN section 2
    assert v.title("single_teacher") == "Single-teacher PURGE"
    assert (v.title("teacher", "short"), v.title("teacher"), v.title("teacher", "retraining")) == (
        "Teachers", "Teacher ensemble", "Teacher retraining")
    assert v.titles("short")["purge"] == "PURGE"
    assert v.title("purge (N_s = 4)") == "purge (N_s = 4)"  # not a role: shown as it is
    with pytest.raises(ValueError, match="form: got 'long'"):
        v.title("purge", "long")


def test_the_old_title_tables_read_the_vocabulary():
    assert METHOD_TITLES == {m: v.title(m) for m in (*METHODS, "full_retrain")}
    assert {name: role.title for name, role in ROLES.items()} == {r: v.title(r) for r in ("teacher", *METHODS)}


def test_positions_are_one_based_on_screen():
    assert (v.teacher_label(0), v.student_label(2), v.chunk_label(1), v.slice_label(0), v.step_label(4)) == (
        "Teacher 1", "Student 3", "chunk 2", "slice 1", "step 5")
    assert v.constituent_label("teacher", 2) == "Teacher 3"
    assert v.constituent_label("baseline", 0) == "Baseline (SISA) student 1"
    assert v.teacher_names([0, 1, 2]) == "Teachers 1–3"
    assert v.teacher_names([0, 2]) == "Teachers 1, 3"
    assert v.teacher_names([]) == "no teacher"
