"""Learn: a guided lesson in numbered steps on a tiny real run. Each step shows the run's real state,
lets the user take the step (train, forget, verify) and ends with a question answered after a guess.
The step is in the URL (`?step=3`), so a link opens the same step."""

import functools
import shutil

import streamlit as st

from dashboard import learn_parts as parts
from dashboard import lesson, state
from dashboard.learn_parts import lesson_dir
from purge_engine.experiment import Experiment
from purge_engine.plan import make_plan

QUERY_STEP = "step"
PREV, NEXT, RESET = "learn_prev", "learn_next", "learn_reset"


def lesson_run() -> Experiment | None:
    return state.open_run(lesson_dir()) if (lesson_dir() / "config.json").exists() else None


# -- the jobs a step starts (worker threads: engine calls only) ---------------------------------------
def train_work(methods):
    where = lesson_dir()

    def work(on_event, should_stop):
        exp = Experiment.create(lesson.LESSON_CONFIG, where)
        exp.train(on_event=on_event, should_stop=should_stop, methods=methods)
        return exp.evaluate()["accuracy"]
    return work


def forget_work(sample_id: int):
    where = lesson_dir()

    def work(on_event, should_stop):
        return Experiment.open(where).forget([sample_id], on_event=on_event, should_stop=should_stop).request_id
    return work


def verify_work(on_event, should_stop, where=None):
    return Experiment.open(where).verify(on_event=on_event, should_stop=should_stop)


# -- navigation ------------------------------------------------------------------------------------
def go_to(step: int) -> None:
    st.query_params[QUERY_STEP] = str(step)


def navigation(step: int) -> None:
    back, _, forward = st.columns([1, 4, 1])
    back.button("← Previous", key=PREV, on_click=go_to, args=(step - 1,), disabled=step == 1, width="stretch")
    forward.button("Next →", key=NEXT, on_click=go_to, args=(step + 1,), disabled=step == len(lesson.STEPS),
                   width="stretch")


def reset_lesson() -> None:
    if state.registry().running(lesson_dir()) is None:
        shutil.rmtree(lesson_dir(), ignore_errors=True)
    for key in [k for k in st.session_state if str(k).startswith("learn_")]:
        del st.session_state[key]
    go_to(1)


st.title("Learn: exact unlearning, step by step")
step = lesson.clamp_step(st.query_params.get(QUERY_STEP))
go_to(step)  # a missing or out-of-range step in the link becomes a valid one
st.progress(step / len(lesson.STEPS), text=f"Step {step} of {len(lesson.STEPS)}: {lesson.STEPS[step - 1]}")
bundle = state.load_bundle(lesson.LESSON_CONFIG.dataset, lesson.LESSON_CONFIG.data_root)
pristine = make_plan(lesson.LESSON_CONFIG, bundle)
run = lesson_run()
st.header(f"{step}. {lesson.STEPS[step - 1]}")
# Steps draw the pristine plan (questions and previews are about it) and read results from the run.
parts.STEP_VIEWS[step](run, pristine, bundle, lesson.lesson_samples(pristine),
                       parts.LessonWork(train=train_work, forget=forget_work,
                                        verify=functools.partial(verify_work, where=lesson_dir())))
parts.ask(step, pristine)
navigation(step)
with st.sidebar.expander("Lesson"):
    st.caption(f"A tiny real run in `{lesson_dir()}`: {lesson.LESSON_CONFIG.n_teachers} teachers, "
               f"{lesson.LESSON_CONFIG.n_students} students, {lesson.LESSON_CONFIG.epochs} epochs. Steps:")
    st.markdown("\n".join(f"{i}. {title}" for i, title in enumerate(lesson.STEPS, 1)))
    st.button("Start the lesson over", key=RESET, on_click=reset_lesson,
              help="Deletes this browser's lesson run and your answers (other browsers keep theirs).")
    st.caption("Each browser has its own lesson run (its id is in the address bar): share the link to share it.")
