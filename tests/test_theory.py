"""theory.py: the closed-form speed-ups against the published values (DESIGN section 7) and their bounds."""

import pytest

from purge_engine import theory

# DESIGN section 7: N_t = 32, r = 1.
PAPER_ROW = {1: 1.48, 2: 2.91, 4: 5.65, 8: 10.67, 16: 19.2, 32: 32.0}


@pytest.mark.parametrize("n_students,expected", PAPER_ROW.items())
def test_teacher_side_speedup_matches_the_published_values(n_students, expected):
    assert round(theory.teacher_side_speedup(32, n_students, 1), 2) == expected


@pytest.mark.parametrize("n_teachers,n_students", [(32, 1), (32, 8), (12, 4), (9, 3)])
def test_r1_form_equals_the_general_form(n_teachers, n_students):
    short = 3 * n_teachers * n_students / (2 * n_teachers + n_students)
    assert theory.teacher_side_speedup(n_teachers, n_students, 1) == pytest.approx(short)


@pytest.mark.parametrize("r", [1, 2, 4])
def test_speedup_is_at_least_n_students_and_n_teachers_when_one_teacher_each(r):
    for n_students in theory.divisors(16):
        assert theory.teacher_side_speedup(16, n_students, r) >= n_students - 1e-12
    assert theory.teacher_side_speedup(16, 16, r) == pytest.approx(16)


def test_student_side_speedup_and_cost():
    assert theory.student_side_speedup(1) == pytest.approx(1.0)
    assert theory.student_side_speedup(4) == pytest.approx(12 / 9)
    # |D^S| e (2R+1) / (3 N_s R): 1200 samples, 10 epochs, 4 students, R = 5
    assert theory.student_side_cost(1200, 10, 4, 5) == pytest.approx(1200 * 10 * 11 / 60)


def test_one_batched_request_equals_the_single_request_form():
    for r in (1, 2, 4):
        for n_students in (1, 2, 4, 8):
            assert theory.batched_teacher_side_speedup(8, n_students, r, 1) == pytest.approx(
                theory.teacher_side_speedup(8, n_students, r))


def test_batching_many_requests_tends_to_a_full_student_retrain():
    few = theory.batched_teacher_side_speedup(32, 8, 1, 2)
    many = theory.batched_teacher_side_speedup(32, 8, 1, 500)
    assert 1.0 <= many < few
    assert many == pytest.approx(1.0, abs=1e-6)


def test_bad_layouts_name_the_field():
    with pytest.raises(ValueError, match="n_students"):
        theory.teacher_side_speedup(4, 8, 1)
    with pytest.raises(ValueError, match="student_slices"):
        theory.teacher_side_speedup(4, 2, 0)
    with pytest.raises(ValueError, match="n_requests"):
        theory.batched_teacher_side_speedup(4, 2, 1, 0)
