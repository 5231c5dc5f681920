"""The Learn page through AppTest: every step renders from a real plan, questions reveal their
engine-computed answers after a guess, and the lesson's actions train, forget and verify a real run."""

import json

import pytest

from dashboard.learn import lesson
from dashboard.learn import lesson_evidence as evidence
from purge_engine.canaries import CANARY_TEACHER, canary_ids
from purge_engine.datasets.readers import load_dataset
from purge_engine.plan import make_plan, predicted_cost, retrain_scope
from tests.dashboard.conftest import app_on, run_until


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def pristine(digits):
    return make_plan(lesson.LESSON_CONFIG, digits)


@pytest.fixture(scope="module")
def canary_plan(digits):
    return make_plan(lesson.CANARY_CONFIG, digits)


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
        q = lesson.question(step, make_plan(lesson.step_config(step), load_dataset("digits")))
        assert q.answer in q.options and len(set(q.options)) == len(q.options), step


def test_the_canary_run_plants_its_canaries_where_the_lesson_says(canary_plan, digits):
    ids = lesson.canaries(canary_plan)  # canary_ids raises a ValueError past the layout's maximum
    assert len(ids) == lesson.CANARY_CONFIG.canaries == 6
    assert ids == canary_ids(lesson.CANARY_CONFIG, digits.id_space or digits.n_train).tolist()
    for i in ids:
        where = canary_plan.locate(i)
        assert (where["teacher"], where["student"], where["chunk"]) == (CANARY_TEACHER, 0, 0)
    assert evidence.exposed_students(canary_plan) == [0]
    assert lesson.step_config(9) == lesson.step_config(10) == lesson.CANARY_CONFIG
    assert lesson.step_config(8) == lesson.LESSON_CONFIG


def test_the_canary_questions_come_from_the_plan(canary_plan):
    cost = predicted_cost(canary_plan, retrain_scope(canary_plan, lesson.canaries(canary_plan)))
    leak = lesson.question(9, canary_plan)
    assert leak.answer == "Student 1"  # the PURGE student Teacher 1 teaches
    assert f"({cost['teacher']['sample_steps']:,} sample-steps)" in leak.prompt
    assert f"({cost['baseline']['sample_steps']:,})" in leak.explanation
    assert "Student 1 answers 83% of them" in lesson.question(9, canary_plan, REPORT).explanation
    budget = cost["teacher"]["sample_steps"] + cost["purge"]["sample_steps"]
    contrast = lesson.question(10, canary_plan)
    assert contrast.answer == "The from-scratch reference's" and f"{budget:,} sample-steps" in contrast.prompt
    assert lesson.question(10, canary_plan, REPORT).answer == "The from-scratch reference's"
    differs = {**REPORT, "contrast": {**REPORT["contrast"], "relearning": {
        **REPORT["contrast"]["relearning"], "purge": REPORT["contrast"]["relearning"]["approximate"]}}}
    assert lesson.question(10, canary_plan, differs).answer == "Neither"  # a measurement that disagrees says so


# A report in the shape Experiment.audit returns (numbers as the lesson's canary run measured them).
def _point(round_, p):
    return {"round": round_, "p": [p, p], "canary_rate": {"teacher-0": 0.0, "purge-0": 0.0}}


REPORT = {
    "canary": {"teacher": {str(i): {"before": 1.0 if i == 0 else 0.0, "after": 0.0, "teacher_only": 0.0,
                                    "reference": 0.0} for i in range(4)},
               "purge": {"0": {"before": 5 / 6, "after": 0.0, "teacher_only": 5 / 6, "reference": 0.0},
                         "1": {"before": 0.0, "after": 0.0, "teacher_only": 0.0, "reference": 0.0}},
               "baseline": {str(k): {"before": 0.0, "after": 0.0, "teacher_only": 0.0, "reference": 0.0}
                            for k in range(2)}},
    "canary_cost": {"teacher": 4120, "teacher_only": {"teacher": 4120, "students": 0},
                    "purge": {"teacher": 4120, "students": 4201}, "baseline": {"teacher": 4120, "students": 8508}},
    "membership": [{"sample_id": 5, "role": "teacher", "constituent": 0, "p_before": 1e-10},
                   {"sample_id": 5, "role": "purge", "constituent": 0, "p_before": 1e-6}],
    "contrast": {"rows": [{"sample_id": 5, "role": "teacher", "constituent": 0},
                          {"sample_id": 5, "role": "purge", "constituent": 0}],
                 "relearning": {s: [_point(r, p) for r in range(4)] for s, p in
                                (("purge", 0.4), ("reference", 0.4), ("approximate", 0.02))},
                 "quantisation": {s: {"8": _point(0, p), "4": _point(0, p)} for s, p in
                                  (("purge", 0.5), ("reference", 0.5), ("approximate", 0.01))}},
}


def test_canary_figures_draw_the_measured_rates(canary_plan):
    before = evidence.canary_frame(evidence.rates_table({"teacher": [1.0, 0, 0, 0], "purge": [0.5, 0.0],
                                                         "baseline": [0.0, 0.0]}), canary_plan)
    assert set(before["state"]) == {"before"}  # nothing forgotten yet: no after, no reference bars
    assert list(before["name"]) == ["Teacher 1 · held them", "PURGE Student 1 · exposed",
                                    "PURGE Student 2 · unexposed", "Baseline Student 1", "Baseline Student 2"]
    figure = evidence.canary_figure(evidence.canary_frame(REPORT["canary"], canary_plan))
    assert [t.name for t in figure.data] == ["before forgetting", "after forgetting", "from-scratch reference"]
    assert figure.data[0].y[1] == pytest.approx(100 * 5 / 6) and figure.data[1].y[1] == 0
    ways = evidence.ways(REPORT, canary_plan, retrain_scope(canary_plan, lesson.canaries(canary_plan)))
    assert [(w.name, w.sample_steps, w.where) for w in ways] == [
        ("Teacher only", 4120, "Student 1"), ("PURGE", 8321, "any student"), ("Baseline (SISA)", 12628, "any student")]
    assert [w.left for w in ways] == [pytest.approx(5 / 6), 0.0, 0.0]
    assert ways[1].retrains == "Teacher 1, then Student 1 from chunk 1, where Teacher 1 enters"
    assert ways[2].retrains == "Teacher 1, then all 2 baseline students from scratch"


def test_contrast_figures_put_the_reference_wide_under_purge():
    frame = evidence.contrast_frame(REPORT["contrast"])
    assert evidence.before_p(REPORT) == pytest.approx((1e-10 + 1e-6) / 2)  # the median of two
    relearning = evidence.relearning_figure(frame, evidence.before_p(REPORT))
    assert [t.name for t in relearning.data][0] == "From-scratch reference"
    assert relearning.data[0].line.width > relearning.data[1].line.width
    assert list(relearning.data[0].y) == list(relearning.data[1].y) and list(relearning.data[0].x) == [0, 1, 2, 3]
    quantised = evidence.quantisation_figure(frame, None)
    assert list(quantised.data[2].x) == ["8-bit", "4-bit"]
    assert evidence.last_round(frame) == {"reference": 0.4, "purge": 0.4, "approximate": 0.02}
    assert "approximate 0.02" in evidence.relearning_sentence(frame)
    assert evidence.series_equal(REPORT["contrast"], "purge", "reference")
    assert evidence.series_equal({"relearning": {"purge": []}}, "purge", "reference") is None


def test_a_link_opens_its_step_and_bad_steps_fall_back(empty_runs_dir):
    assert learn_at(4).header[0].value == "4. The constituent mapping"
    at = learn_at(1)
    assert at.header[0].value.startswith("1. ") and at.button(key="learn_prev").disabled
    at.button(key="learn_next").click().run()
    assert at.header[0].value.startswith("2. ") and at.query_params["step"] == "2"
    assert learn_at(99).header[0].value.startswith(f"{len(lesson.STEPS)}. ")


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
    assert (empty_runs_dir / "lessons" / a / "lesson" / "config.json").is_file()
    assert not (empty_runs_dir / "lessons" / b).exists()  # the other browser's lesson is untouched
    shared = learn_at(2)
    shared.query_params["lesson"] = a  # a link carrying the id opens that lesson run
    shared.run()
    assert shared.query_params["lesson"] == a
    assert any(m.label == "Teacher ensemble: test accuracy" for m in shared.metric)
    shared.button(key="learn_reset").click().run()  # a visitor's reset: a fresh lesson of its own
    assert shared.query_params["lesson"] != a
    assert (empty_runs_dir / "lessons" / a / "lesson" / "config.json").is_file()  # the owner's lesson is kept
    first.button(key="learn_reset").click().run()  # the owner's own reset deletes it
    assert not (empty_runs_dir / "lessons" / a / "lesson").exists()
    hostile = learn_at(2)
    hostile.query_params["lesson"] = "../../etc"  # not an id: a fresh lesson, nothing outside the runs dir
    hostile.run()
    assert hostile.query_params["lesson"] != "../../etc" and not hostile.exception


def canary_bars(at, figure: int = 0) -> dict[str, dict[str, float]]:
    """state name -> bar name -> canary rate (%) of the step's canary figure, as the page drew it."""
    spec = json.loads(at.get("plotly_chart")[figure].proto.spec)
    return {trace["name"]: dict(zip(trace["x"], trace["y"], strict=True)) for trace in spec["data"]}


def test_the_canary_steps_render_before_anything_is_trained(empty_runs_dir):
    leak = learn_at(9)
    assert leak.header[0].value == "9. The leak through distillation"
    assert leak.button(key="learn_action").label.startswith("Train the canary run")
    assert not leak.button(key="learn_action").disabled and not leak.get("plotly_chart")
    contrast = learn_at(10)
    assert contrast.header[0].value == "10. Exact against approximate"
    assert contrast.button(key="learn_action").disabled  # nothing to verify yet
    assert any("Forget the canaries first" in c.value for c in contrast.caption)


def test_the_canary_run_trains_forgets_and_verifies_from_its_steps(empty_runs_dir):
    at = learn_at(9)
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: at.button(key="learn_action").label.startswith("Forget") and at.get("plotly_chart"))
    assert (empty_runs_dir / "lessons" / at.query_params["lesson"] / "canary" / "config.json").is_file()
    before = canary_bars(at)["before forgetting"]  # measured on the trained run, before any request
    assert before["PURGE Student 1 · exposed"] > before["PURGE Student 2 · unexposed"]
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: at.button(key="learn_action").disabled and "after forgetting" in canary_bars(at))
    assert canary_bars(at)["before forgetting"] == before  # the request recorded what the run measured
    assert set(canary_bars(at)["after forgetting"].values()) == {0.0}
    assert not at.metric  # the three ways stay hidden until a guess
    at.radio(key="learn_answer_9").set_value("Student 1").run()
    at.button(key="learn_check_9").click().run()
    assert any(s.value.startswith("**Right.**") and "Measured on this run" in s.value for s in at.success)
    shown = [(m.label, m.value) for m in at.metric]  # per way: canaries left, sample-steps
    teacher_only, purge, baseline = shown[0::2]
    assert teacher_only == ("Canaries left on Student 1", f"{before['PURGE Student 1 · exposed'] / 100:.0%}")
    assert purge == baseline == ("Canaries left on any student", "0%")
    steps = [int(value.replace(",", "")) for label, value in shown[1::2]]
    assert steps[0] < steps[1] < steps[2]  # teacher only < PURGE < baseline
    at.query_params["step"] = "10"
    at.run()
    at.button(key="learn_action").click().run()
    run_until(at, lambda at: any(s.value.startswith("**Exact.**") for s in at.success))
    at.radio(key="learn_answer_10").set_value("The from-scratch reference's").run()
    at.button(key="learn_check_10").click().run()
    relearning = canary_bars(at)  # the relearning figure: series -> round -> median p
    assert relearning["PURGE (exact)"] == relearning["From-scratch reference"]
    assert any(c.value.startswith("After 3 rounds of relearning") for c in at.caption)
    at.query_params["step"] = "9"
    at.run()
    bars = canary_bars(at)
    assert bars["after forgetting"] == bars["from-scratch reference"]  # after == reference once verified
