"""The Learn page's lesson: a tiny real layout, the samples it deletes, and the questions it asks.

Pure (no st.*): every fact and every answer is read from the engine's plan (make_plan, retrain_scope,
predicted_cost) or the lesson run's ledger, never written by hand, so the lesson stays true if the
engine's layout rules change.
Questions are asked about the lesson's pristine plan (before anything is forgotten), so an answer
does not change once the step has been taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.learn import lesson_evidence as evidence
from purge_engine import CANARY_TEACHER, Plan, PurgeConfig, canary_ids, predicted_cost, retrain_scope, teacher_names

# 4 teachers in 2 slices, 2 students of 2 chunks in 2 slices; students learn from a held-out half,
# so some samples sit only in a teacher shard and others only in a student chunk.
LESSON_CONFIG = PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, epochs=6,
                            student_data="disjoint", student_fraction=0.5, seed=7)
LESSONS_DIR = "lessons"  # <runs>/lessons/<lesson id>/{lesson,canary}: apart from users' runs
LESSON_RUN = "lesson"
# Steps 9 and 10 run on a second tiny run: students learn from half of the teachers' own pool
# (overlap), and 6 canaries (flipped labels) sit in Teacher 1's shard and Student 1's first chunk.
# 12 epochs and seed 1 (measured on CPU, seeds 1-7): at 8 epochs Teacher 1 answers 1-3 of the 6 flipped
# labels and Student 1 0-2, too faint to see; here Teacher 1 and Student 1 answer 6 of 6, Student 2 none.
CANARY_CONFIG = LESSON_CONFIG.replace(student_data="overlap", canaries=6, epochs=12, seed=1)
CANARY_RUN = "canary"
CANARY_METHODS = ("purge", "baseline")  # the canary run's students (single-teacher adds nothing here)
CANARY_STEPS = (9, 10)
TEACHER_SIDE = (1, 1)  # the teacher-side sample: Teacher 2, slice 2 (0-based)
STUDENT_SIDE = (0, 1, 0)  # the student-side sample: Student 1, chunk 2, slice 1 (0-based)

STEPS = (
    "Why deletion is hard",
    "SISA: shards and slices",
    "Why distillation breaks isolation",
    "The constituent mapping",
    "Incremental multi-teacher labels",
    "A teacher-side deletion",
    "A student-side deletion",
    "The exactness check",
    "The leak through distillation",
    "Exact against approximate",
)


@dataclass(frozen=True)
class Question:
    prompt: str
    options: tuple[str, ...]
    answer: str
    explanation: str


def lesson_samples(plan: Plan) -> dict[str, int]:
    """{"teacher_side": a sample of Teacher 2 slice 2 in no student chunk, "student_side": a sample of
    Student 1 chunk 2 slice 1 in no teacher shard}."""
    where = plan.locations()
    t, s = TEACHER_SIDE
    k, c, j = STUDENT_SIDE
    teacher_side = next(int(i) for i in plan.teacher_shards[t][s] if where["student"][i] < 0)
    student_side = next(int(i) for i in plan.student_shards[k][c][j] if where["teacher"][i] < 0)
    return {"teacher_side": teacher_side, "student_side": student_side}


def trained(exp, *roles: str) -> bool:
    """True when the lesson run exists and has trained every one of `roles`."""
    return exp is not None and set(roles) <= set(exp.trained_roles())


def request_for(exp, sample_id: int) -> dict | None:
    """The ledger record of the finished lesson request that forgot sample_id, if any."""
    if exp is None:
        return None
    for request_id in range(1, exp.ledger.next_request_id()):
        record = exp.ledger.record(request_id)
        if sample_id in record["sample_ids"] and record["status"] == "done":
            return record
    return None


def priced_apart(plan: Plan, record: dict) -> bool:
    """True when a served lesson request's cost differs from its price on the pristine plan (step 3 prices the
    teacher-side sample there): an earlier request had forgotten other samples, and a request is priced on
    the plan it is served on (predicted_cost counts the plan without every forgotten sample)."""
    pristine = predicted_cost(plan, retrain_scope(plan, record["sample_ids"]))
    return any(pristine[role]["sample_steps"] != record["predicted"][role]["sample_steps"]
               for role in ("teacher", *record["methods"], "full_retrain"))


def _steps(first: int, last: int) -> str:
    return f"step {first + 1}" if first == last else f"steps {first + 1}–{last + 1}"


def canaries(plan: Plan) -> list[int]:
    """The canary run's canaries (sample ids), from its pristine plan (every id of the pool placed)."""
    return canary_ids(CANARY_CONFIG, plan.n_pool).tolist()


def step_samples(step: int, plan: Plan) -> dict:
    """The samples step `step` works on: {"canaries": [...]} for CANARY_STEPS, else lesson_samples."""
    return {"canaries": canaries(plan)} if step in CANARY_STEPS else lesson_samples(plan)


def step_config(step: int) -> PurgeConfig:
    """The config of the run step `step` draws: the canary run for CANARY_STEPS, else the lesson run."""
    return CANARY_CONFIG if step in CANARY_STEPS else LESSON_CONFIG


def question(step: int, plan: Plan, measured: dict | None = None) -> Question:
    """The question closing lesson step `step` (1-based), answered from the plan (the canary run's for
    CANARY_STEPS); measured: the canary run's audit, once it has one, quoted in the explanation."""
    if step in CANARY_STEPS:
        return _CANARY_QUESTIONS[step](plan, measured)
    samples = lesson_samples(plan)
    x, y = samples["teacher_side"], samples["student_side"]
    scope_x, scope_y = retrain_scope(plan, [x]), retrain_scope(plan, [y])
    return _QUESTIONS[step](plan, x, y, scope_x, scope_y)


def _q_hard(plan: Plan, *_) -> Question:
    return Question(
        f"One model was trained on all {plan.n_pool:,} images. To forget one image exactly, what must be retrained?",
        ("Nothing: delete the image from disk", "Only the last epoch", "Everything, from scratch"),
        "Everything, from scratch",
        "Every weight was touched by every image in every epoch; the only exact way to remove one image's "
        "influence is to train again without it.")


def _q_sisa(plan: Plan, x: int, _y, scope_x, _sy) -> Question:
    (teacher, first), = scope_x.teachers.items()
    last = plan.teacher_slices - 1
    right = f"Teacher {teacher + 1}, {_steps(first, last)} only"
    return Question(
        f"Sample #{x} sits in Teacher {teacher + 1}'s shard, slice {first + 1}. Which teacher steps retrain?",
        (f"All {plan.n_teachers * plan.teacher_slices} teacher steps", f"Teacher {teacher + 1}, "
         f"{_steps(0, last)}", right) if first > 0 else
        (f"All {plan.n_teachers * plan.teacher_slices} teacher steps", right, "No teacher step"),
        right,
        f"Only Teacher {teacher + 1} saw the sample, and only from slice {first + 1} on: it restarts from the "
        f"checkpoint saved before that slice. The other {plan.n_teachers - 1} teachers keep every checkpoint.")


def _q_baseline(plan: Plan, x: int, _y, scope_x, _sy) -> Question:
    n = len(scope_x.students["baseline"])
    options = tuple(dict.fromkeys(("0", "1", f"{plan.n_students} (all of them)")))
    right = f"{plan.n_students} (all of them)" if n == plan.n_students else str(n)
    return Question(
        f"A baseline student learns every chunk from the whole teacher ensemble. After forgetting #{x} "
        "(a teacher-side sample), how many baseline student constituents must retrain?",
        options, right,
        "Every soft label the baseline students learned from mixed in the changed teacher, so every student "
        "is tainted and retrains from scratch: distillation has undone SISA's isolation.")


def _q_mapping(plan: Plan, *_) -> Question:
    teacher = 2
    feeds = [k for k, group in enumerate(plan.mapping) if teacher in group]
    options = tuple(f"Student {k + 1}" for k in range(plan.n_students)) + ("Every student",)
    right = f"Student {feeds[0] + 1}" if len(feeds) == 1 else "Every student"
    return Question(f"Which student does Teacher {teacher + 1} teach?", options, right,
                    "Each student is taught by its own contiguous group of teachers (the constituent mapping), "
                    "so a teacher influences exactly one student.")


def _q_labels(plan: Plan, *_) -> Question:
    teachers = plan.labelling_teachers("purge", 0, 1)
    group = plan.mapping[0]
    right = teacher_names(teachers)
    options = tuple(dict.fromkeys((f"Teacher {group[1] + 1} alone", right, teacher_names(range(plan.n_teachers)))))
    return Question("Which teachers' averaged softmax labels chunk 2 of Student 1?", options, right,
                    "Chunk l of a student is labelled by the mean of its first l teachers: teachers enter one "
                    "chunk at a time, so a teacher only influences the chunks from its own on.")


def _q_teacher_side(plan: Plan, x: int, _y, scope_x, _sy) -> Question:
    students = scope_x.students["purge"]  # what the cost table's "PURGE students" row counts, too
    (k, first), = students.items()
    options = tuple(dict.fromkeys(("0", "1", str(plan.n_students))))
    return Question(
        f"Forget #{x} (Teacher {next(iter(scope_x.teachers)) + 1}'s shard). How many student constituents will "
        "PURGE retrain?", options, str(len(students)),
        f"Only Student {k + 1}, the one this teacher teaches, and only from {_steps(first, first)} on (the first "
        "chunk this teacher labels); its earlier checkpoints are kept. The teacher itself retrains too, the same "
        "for every method: the cost table counts it on its own row, not in PURGE's.")


def _q_student_side(plan: Plan, _x, y: int, _sx, scope_y) -> Question:
    (k, first), = scope_y.students["purge"].items()
    n = plan.student_steps(k)
    options = tuple(f"Step {m + 1}" for m in range(n))
    return Question(
        f"Forget #{y}, a sample only Student {k + 1} trained on (chunk {first // plan.student_slices + 1}, slice "
        f"{first % plan.student_slices + 1}). From which step does Student {k + 1} restart?",
        options, f"Step {first + 1}",
        f"A student step trains on every slice seen so far, so steps before the sample's slice never saw it: "
        f"Student {k + 1} restarts from the checkpoint after step {first} and no teacher retrains."
        if first else f"The sample was in Student {k + 1}'s first slice, so it restarts from its seeded "
                      "initialisation; no teacher retrains.")


def _q_exact(*_) -> Question:
    right = "Bit for bit equal"
    return Question(
        "Verification trains every constituent from scratch, without the forgotten samples, with the same "
        "seeds. Compared with the unlearned models, their parameters will be…",
        (right, "Close (within 1e-6)", "Different, but just as accurate"), right,
        "Every random choice comes from the seed and the position (constituent, slice, epoch), and a retrain "
        "replays exactly the steps a from-scratch run would take, so the parameters are identical.")


def _q_leak(plan: Plan, measured: dict | None) -> Question:
    scope = retrain_scope(plan, canaries(plan))
    cost = predicted_cost(plan, scope)
    exposed = evidence.exposed_students(plan)
    options = tuple(f"Student {k + 1}" for k in range(plan.n_students)) + (
        f"None: only Teacher {CANARY_TEACHER + 1} trained on them",)
    right = f"Student {exposed[0] + 1}" if len(exposed) == 1 else options[-1]
    seen = ""
    if measured:
        rates = measured["canary"]["purge"][str(exposed[0])]
        seen = (f" Measured on this run: {right} answers {evidence.percent(rates['before'])} of them with the "
                f"planted label before, still {evidence.percent(rates['teacher_only'])} with the teacher alone "
                f"retrained, {evidence.percent(rates['after'])} after PURGE.")
    return Question(
        f"Retrain Teacher {CANARY_TEACHER + 1} without the canaries ({cost['teacher']['sample_steps']:,} "
        "sample-steps) and keep every PURGE student. Which one still answers the canaries with their planted "
        "labels?", options, right,
        f"{right} learned Teacher {CANARY_TEACHER + 1}'s soft labels on the canary images themselves, so it copied "
        f"the flipped labels; no other student learned from Teacher {CANARY_TEACHER + 1}. PURGE retrains {right} "
        f"too ({cost['purge']['sample_steps']:,} more sample-steps); the baseline retrains every student "
        f"({cost['baseline']['sample_steps']:,})." + seen)


def _q_contrast(plan: Plan, measured: dict | None) -> Question:
    cost = predicted_cost(plan, retrain_scope(plan, canaries(plan)))
    budget = cost["teacher"]["sample_steps"] + cost["purge"]["sample_steps"]
    options = ("The from-scratch reference's", "The approximate method's", "Neither")
    contrast = (measured or {}).get("contrast") or {}
    same = evidence.series_equal(contrast, "purge", "reference")
    right = options[2] if same is False else options[0]  # unmeasured: by construction (step 8)
    seen = ""
    if same is not None:
        p = evidence.last_round(evidence.contrast_frame(contrast))
        seen = (f" Measured after the last round: median p {p['purge']:.2g} for PURGE, {p['reference']:.2g} for "
                f"the reference, {p['approximate']:.2g} for the approximate method (below {evidence.ALPHA:g}: "
                "looks like a member).")
    return Question(
        f"The approximate method fine-tunes the same constituents for PURGE's compute ({budget:,} sample-steps). "
        "After rounds of relearning on the retained data, whose curve does PURGE's lie on?", options, right,
        "PURGE's constituents are the from-scratch reference's, bit for bit, so every test gives the same numbers; "
        "fine-tuning starts from weights that saw the canaries and keeps a trace of them." + seen)


_CANARY_QUESTIONS = {9: _q_leak, 10: _q_contrast}
_QUESTIONS = {1: _q_hard, 2: _q_sisa, 3: _q_baseline, 4: _q_mapping, 5: _q_labels, 6: _q_teacher_side,
              7: _q_student_side, 8: _q_exact}


def clamp_step(value) -> int:
    """A step from the URL: an integer in [1, len(STEPS)]; anything else is step 1."""
    try:
        step = int(value)
    except (TypeError, ValueError):
        return 1
    return int(np.clip(step, 1, len(STEPS)))
