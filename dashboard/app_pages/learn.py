"""Learn: a guided lesson in numbered steps on a tiny real run. Each step shows the run's real state,
lets the user take the step (train, forget, verify) and ends with a question answered after a guess.
The step is in the URL (`?step=3`), so a link opens the same step."""

import functools
import shutil

import streamlit as st

from dashboard.learn import lesson, parts, steps
from dashboard.learn.parts import canary_dir, lesson_dir
from dashboard.shared import state
from purge_engine import METHODS, Experiment, make_plan, recipes

QUERY_STEP = "step"
PREV, NEXT, RESET = "learn_prev", "learn_next", "learn_reset"


def open_lesson_run(where) -> Experiment | None:
    return state.open_run(where) if (where / "config.json").exists() else None


# -- the jobs a step starts (worker threads: engine calls only; `where` is read in the page script) --------
def train_work(methods, config, where):
    def work(on_event, should_stop):
        return recipes.train(where, config, methods, on_event=on_event, should_stop=should_stop)["accuracy"]
    return work


def forget_work(sample_ids, methods, where):
    def work(on_event, should_stop):
        return recipes.forget(where, list(sample_ids), methods, on_event=on_event,
                              should_stop=should_stop)["request_id"]
    return work


def verify_work(on_event, should_stop, where=None):
    return recipes.verify(where, on_event=on_event, should_stop=should_stop)


def lesson_work(step: int, where) -> parts.LessonWork:
    """The jobs of step `step`'s run: the lesson run, or the canary run for steps 9 and 10."""
    config = lesson.step_config(step)
    methods = lesson.CANARY_METHODS if step in lesson.CANARY_STEPS else METHODS
    return parts.LessonWork(train=functools.partial(train_work, config=config, where=where),
                            forget=functools.partial(forget_work, methods=methods, where=where),
                            verify=functools.partial(verify_work, where=where))


# -- navigation ------------------------------------------------------------------------------------
def go_to(step: int) -> None:
    st.query_params[QUERY_STEP] = str(step)


def navigation(step: int) -> None:
    back, _, forward = st.columns([1, 4, 1])
    back.button("← Previous", key=PREV, on_click=go_to, args=(step - 1,), disabled=step == 1, width="stretch")
    forward.button("Next →", key=NEXT, on_click=go_to, args=(step + 1,), disabled=step == len(lesson.STEPS),
                   width="stretch")


def reset_lesson() -> None:
    """This browser's own lesson is deleted; a lesson opened from someone's link is left as it is and this
    browser starts a fresh one of its own."""
    if parts.owns_lesson():
        for where in (lesson_dir(), canary_dir()):
            if state.registry().running(where) is None:
                shutil.rmtree(where, ignore_errors=True)
    else:
        st.query_params[parts.LESSON_QUERY] = st.session_state[parts.LESSON_QUERY] = parts.new_lesson_id()
    for key in [k for k in st.session_state if str(k).startswith("learn_")]:
        del st.session_state[key]
    go_to(1)


st.title("Learn: exact unlearning, step by step")
step = lesson.clamp_step(st.query_params.get(QUERY_STEP))
go_to(step)  # a missing or out-of-range step in the link becomes a valid one
st.progress(step / len(lesson.STEPS), text=f"Step {step} of {len(lesson.STEPS)}: {lesson.STEPS[step - 1]}")
bundle = state.load_bundle(lesson.LESSON_CONFIG.dataset, lesson.LESSON_CONFIG.data_root)
pristine = make_plan(lesson.step_config(step), bundle)
where = parts.step_dir(step)
st.header(f"{step}. {lesson.STEPS[step - 1]}")
# Steps draw the pristine plan (questions and previews are about it) and read results from the run;
# a step returns what it measured, which its question's explanation quotes.
measured = steps.STEP_VIEWS[step](open_lesson_run(where), pristine, bundle, lesson.step_samples(step, pristine),
                                  lesson_work(step, where))
parts.ask(step, pristine, measured)
navigation(step)
with st.sidebar.expander("Lesson"):
    st.caption(f"A tiny real run in `{lesson_dir()}`: {lesson.LESSON_CONFIG.n_teachers} teachers, "
               f"{lesson.LESSON_CONFIG.n_students} students, {lesson.LESSON_CONFIG.epochs} epochs; steps 9 and 10 "
               f"use a second one with {lesson.CANARY_CONFIG.canaries} canaries in `{canary_dir()}`. Steps:")
    st.markdown("\n".join(f"{i}. {title}" for i, title in enumerate(lesson.STEPS, 1)))
    st.button("Start the lesson over", key=RESET, on_click=reset_lesson,
              help="Deletes this browser's lesson runs and your answers (other browsers keep theirs; a lesson "
                   "opened from a shared link is kept, and you start a fresh one).")
    st.caption("Each browser has its own lesson run (its id is in the address bar): share the link to share it.")
