"""The Learn page through AppTest: every step renders from a real plan, questions reveal their
engine-computed answers after a guess, and the lesson's actions train, forget and verify a real run."""

import pytest

from dashboard import lesson
from purge_engine.data import load_dataset
from purge_engine.plan import make_plan, retrain_scope
from tests.dashboard.conftest import app_on, run_until


@pytest.fixture(scope="module")
def pristine():
    return make_plan(lesson.LESSON_CONFIG, load_dataset("digits"))


def learn_at(step: int):
    at = app_on("learn", run=None) if step == 1 else None
    if at is None:
        from streamlit.testing.v1 import AppTest

        from tests.dashboard import APP

        at = AppTest.from_file(str(APP), default_timeout=90)
        at.query_params["step"] = str(step)
        at.switch_page("app_pages/learn.py")
        at.run()
    assert not at.exception, at.exception
    return at



def test_lesson_samples_sit_where_the_lesson_says(pristine):
    samples = lesson.lesson_samples(pristine)
    x, y = pristine.locate(samples["teacher_side"]), pristine.locate(samples["student_side"])
    assert (x["teacher"], x["teacher_slice"], x["student"]) == (*lesson.TEACHER_SIDE, None)
    assert (y["student"], y["chunk"], y["student_slice"], y["teacher"]) == (*lesson.STUDENT_SIDE, None)


def test_answers_come_from_the_plan(pristine):
    samples = lesson.lesson_samples(pristine)
    scope = retrain_scope(pristine, [samples["teacher_side"]])
    assert lesson.question(3, pristine).answer.startswith(str(len(scope.students["baseline"])))
    assert lesson.question(6, pristine).answer == str(len(scope.students["purge"])) == "1"
    first = retrain_scope(pristine, [samples["student_side"]]).students["purge"][0]
    assert lesson.question(7, pristine).answer == f"Step {first + 1}"
    assert lesson.question(5, pristine).answer == "Teachers 1–2"
    for step in range(1, len(lesson.STEPS) + 1):
        q = lesson.question(step, pristine)
        assert q.answer in q.options and len(set(q.options)) == len(q.options), step


def test_a_link_opens_its_step_and_bad_steps_fall_back(empty_runs_dir):
    assert learn_at(4).header[0].value == "4. The constituent mapping"
    at = learn_at(1)
    assert at.header[0].value.startswith("1. ") and at.button(key="learn_prev").disabled
    at.button(key="learn_next").click().run()
    assert at.header[0].value.startswith("2. ") and at.query_params["step"] == "2"
    assert learn_at(99).header[0].value.startswith("8. ")


def test_a_guess_reveals_the_answer(empty_runs_dir, pristine):
    at = learn_at(6)
    q = lesson.question(6, pristine)
    wrong = next(o for o in q.options if o != q.answer)
    assert at.button(key="learn_check_6").disabled
    hidden = "the plan appears here once you have checked your answer"
    assert any(hidden in i.value for i in at.info)
    at.radio(key="learn_answer_6").set_value(wrong).run()
    at.button(key="learn_check_6").click().run()
    assert "Not quite" in at.warning[0].value and q.answer in at.warning[0].value
    assert not any(hidden in i.value for i in at.info)  # the preview shows on the same click
    at.radio(key="learn_answer_6").set_value(q.answer).run()
    at.button(key="learn_check_6").click().run()
    assert any(s.value.startswith("**Right.**") for s in at.success)


def test_the_lesson_trains_forgets_and_verifies(empty_runs_dir):
    at = learn_at(2)
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: any(m.label == "Teacher ensemble: test accuracy" for m in at.metric))
    at.query_params["step"] = "5"
    at.run()
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: any(m.label.startswith("PURGE student") for m in at.metric))
    for step in (6, 7):
        at.query_params["step"] = str(step)
        at.run()
        assert not at.button(key="learn_action").disabled
        at.button(key="learn_action").click().run()
        run_until(at, lambda at: any("Measured sample-steps" in df.value.columns for df in at.dataframe))
        assert at.button(key="learn_action").disabled  # already forgotten
    at.query_params["step"] = "8"
    at.run()
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: any(s.value.startswith("**Exact.**") for s in at.success))


def test_each_browser_gets_its_own_lesson_run_and_a_link_shares_it(empty_runs_dir):
    first, second = learn_at(2), learn_at(2)
    a, b = first.query_params["lesson"], second.query_params["lesson"]
    assert a != b and len(a) == len(b) == 8  # two classmates, two lesson runs
    first.button(key="learn_action").click().run()
    run_until(first, lambda at: any(m.label == "Teacher ensemble: test accuracy" for m in at.metric))
    assert (empty_runs_dir / f"lesson-{a}" / "config.json").is_file()
    assert not (empty_runs_dir / f"lesson-{b}").exists()  # the other browser's lesson is untouched
    shared = learn_at(2)
    shared.query_params["lesson"] = a  # a link carrying the id opens that lesson run
    shared.run()
    assert shared.query_params["lesson"] == a
    assert any(m.label == "Teacher ensemble: test accuracy" for m in shared.metric)
    hostile = learn_at(2)
    hostile.query_params["lesson"] = "../../etc"  # not an id: a fresh lesson, nothing outside the runs dir
    hostile.run()
    assert hostile.query_params["lesson"] != "../../etc" and not hostile.exception
