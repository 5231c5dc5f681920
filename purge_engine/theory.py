"""Closed-form speed-ups of PURGE (DESIGN section 7). Pure arithmetic, no torch.

Assumptions behind every formula here: c = N_t / N_s teachers per student, equal chunk and
slice sizes, the SISA epoch rule with a whole number of epochs per step, cost proportional to
samples trained, and teacher-side requests uniform over teachers. Teacher retraining is the
same for PURGE and the baseline and is left out of these ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

from purge_engine.config import field_range

MAX_REQUESTS = 1_000_000  # K of the batched closed form


def _whole(value, name: str, low: int, high: int, bound: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: got {value!r}, must be an integer in [{low}, {bound or high}]")


def check_layout(n_teachers: int, n_students: int | None = None, student_slices: int = 1,
                 n_requests: int = 0) -> None:
    """ValueError naming the field and its range (PurgeConfig's, for the layout) for a layout the closed
    forms do not take; n_students None: every divisor of n_teachers is asked for."""
    _whole(n_teachers, "n_teachers", *field_range("n_teachers"))
    if n_students is not None:
        _whole(n_students, "n_students", 1, n_teachers, f"n_teachers={n_teachers}")
    _whole(student_slices, "student_slices", *field_range("student_slices"))
    _whole(n_requests, "requests", 0, MAX_REQUESTS)


def _check(n_teachers: int, n_students: int, student_slices: int) -> None:
    check_layout(n_teachers, n_students, student_slices)


def teacher_side_speedup(n_teachers: int, n_students: int, student_slices: int) -> float:
    """Expected speed-up of PURGE over the baseline student for one teacher-side request:
    N_s * 6c(cr+1) / (4c^2 r + 3cr + 3c - r + 3), c = N_t / N_s. Equals N_t when c = 1."""
    _check(n_teachers, n_students, student_slices)
    c, r = n_teachers / n_students, student_slices
    return n_students * 6 * c * (c * r + 1) / (4 * c * c * r + 3 * c * r + 3 * c - r + 3)


def student_side_cost(n_student_samples: int, epochs: int, n_students: int, steps: int) -> float:
    """Expected sample-steps of one student-side request: |D^S| e (2R+1) / (3 N_s R), R = c r."""
    return n_student_samples * epochs * (2 * steps + 1) / (3 * n_students * steps)


def student_side_speedup(steps: int) -> float:
    """Speed-up of a student-side request over retraining that student from scratch: 3R / (2R+1)."""
    return 3 * steps / (2 * steps + 1)


def chunk_restart_cost(chunk_id: int, n_chunks: int, student_slices: int) -> float:
    """Share of one student's full training cost spent retraining from the start of chunk_id
    (0-based): 1 - p r (p r + 1) / (R (R + 1)), R = c r."""
    steps = n_chunks * student_slices
    done = chunk_id * student_slices
    return 1.0 - done * (done + 1) / (steps * (steps + 1))


def batched_teacher_side_speedup(n_teachers: int, n_students: int, student_slices: int, n_requests: int) -> float:
    """Speed-up over the baseline when K teacher-side requests (each on a uniform random teacher)
    are served as one batch: student k restarts at the smallest chunk hit, with
    P(start >= l) = (1 - l / N_t)^K for 0-based l; the baseline retrains every student once."""
    _check(n_teachers, n_students, student_slices)
    if n_requests < 1:
        raise ValueError(f"n_requests: got {n_requests}, must be an integer >= 1")
    c = n_teachers // n_students
    if c * n_students != n_teachers:
        raise ValueError("n_teachers must be a multiple of n_students for this closed form")

    def at_least(chunk: int) -> float:
        return (1 - chunk / n_teachers) ** n_requests

    per_student = sum((at_least(p) - at_least(p + 1)) * chunk_restart_cost(p, c, student_slices) for p in range(c))
    return 1.0 / per_student  # both sides in units of one student's full cost, per student


@dataclass(frozen=True)
class TheoryRow:
    n_teachers: int
    n_students: int
    student_slices: int
    teachers_per_student: float
    teacher_side_speedup: float
    student_side_speedup: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def theory_row(n_teachers: int, n_students: int, student_slices: int) -> TheoryRow:
    c = n_teachers / n_students
    return TheoryRow(
        n_teachers=n_teachers,
        n_students=n_students,
        student_slices=student_slices,
        teachers_per_student=c,
        teacher_side_speedup=teacher_side_speedup(n_teachers, n_students, student_slices),
        student_side_speedup=student_side_speedup(round(c * student_slices)),
    )


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
