"""What every Learn step draws: the lesson run's place, the step's button and job, and the question that
closes it. Drawn with st.*; facts and answers come from learn/lesson.py (pure), and the jobs a button
starts are the page's engine calls (LessonWork).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import NamedTuple

import streamlit as st

from dashboard.learn import lesson
from dashboard.shared import components, grid, state, views
from purge_engine import title

ACTION = "learn_action"  # the button that takes the step
ANSWER, CHECK, REVEALED = "learn_answer_{}", "learn_check_{}", "learn_revealed_{}"


class LessonWork(NamedTuple):
    """The jobs a step's button starts on the lesson run: work(on_event, should_stop) callables."""

    train: Callable  # train(methods) -> work: create the run, train the teachers and those methods, evaluate
    forget: Callable  # forget(sample_ids) -> work: serve a request for those samples
    verify: Callable  # work: verify the latest request


LESSON_QUERY = "lesson"  # the URL names the browser's own lesson run: a reload keeps it, a link shares it
LESSON_OWNED = "lesson_owned"  # the lesson ids this browser session made: only those may it delete


def lesson_id() -> str:
    """This browser's lesson: the id in its URL, else a new one (8 hex digits) written there. A
    classroom is many browsers at once, and each gets its own lesson run; sharing is explicit (the link)."""
    token = st.query_params.get(LESSON_QUERY) or st.session_state.get(LESSON_QUERY) or ""
    if not re.fullmatch(r"[0-9a-f]{8}", token):
        token = new_lesson_id()
    st.session_state[LESSON_QUERY] = token
    if st.query_params.get(LESSON_QUERY) != token:
        st.query_params[LESSON_QUERY] = token
    return token


def new_lesson_id() -> str:
    """A fresh lesson id (8 hex digits), recorded as made by this browser session."""
    token = secrets.token_hex(4)
    st.session_state.setdefault(LESSON_OWNED, set()).add(token)
    return token


def owns_lesson() -> bool:
    """True when this browser session made the lesson it shows (a shared link's lesson is someone else's)."""
    return lesson_id() in st.session_state.get(LESSON_OWNED, set())


def lessons_root():
    """This lesson's folder: <runs>/lessons/<id>/, apart from users' runs (the run picker does not list
    it, and no run name can reach it: store.RESERVED_RUN_NAMES)."""
    return state.runs_dir() / lesson.LESSONS_DIR / lesson_id()


def lesson_dir():
    """This browser's lesson run. Read it in the page script, never in a job's worker thread (it reads
    the session): a job's work takes the directory as an argument."""
    return lessons_root() / lesson.LESSON_RUN


def canary_dir():
    """This browser's canary run (steps 9 and 10), beside its lesson run; read as lesson_dir is."""
    return lessons_root() / lesson.CANARY_RUN


def step_dir(step: int):
    """The run step `step` works on."""
    return canary_dir() if step in lesson.CANARY_STEPS else lesson_dir()


# -- the parts every step uses --------------------------------------------------------------------
def guessed(step: int) -> bool:
    return st.session_state.get(REVEALED.format(step)) is not None


def hidden_until_guessed(step: int, what: str = "the plan appears") -> bool:
    """True (with a note) while the step's preview would give its question's answer away."""
    if guessed(step):
        return False
    st.info(f"Make your guess below first: {what} here once you have checked your answer.",
            icon=":material/visibility_off:")
    return True


def action(label: str, kind: str, work, reason: str | None, where=None) -> None:
    """The step's button: starts `work` (a recipe, which announces its total) as a job on the lesson run
    (or `where`); the job's live view below it."""
    where = where or lesson_dir()
    reason = components.busy_reason(where) or reason
    if st.button(label, key=ACTION, type="primary", disabled=reason is not None, help=reason):
        if components.start_job(where, kind, label, work):
            st.rerun()
    if reason:
        st.caption(reason)


def job_progress(plan, roles, where=None) -> None:
    job = state.current_job(where or lesson_dir())
    if job is not None:
        components.job_view(job, grid.grid_shape(plan, roles))


def planned_grid(plan, scope, roles) -> None:
    """The constituents x steps grid a request with this scope (retrain_scope) would produce."""
    st.html(grid.retrain_grid_html(grid.grid_shape(plan, roles), grid.planned_cells(plan, scope, roles)))


def verdict_box(record: dict) -> None:
    """A request's exactness verdict: green when exact."""
    word, sentence = views.verdict(record)
    (st.success if word == "exact" else st.info)(f"**{word.capitalize()}.** {sentence}")


def accuracy_metrics(accuracy: dict) -> None:
    for column, (role, value) in zip(st.columns(len(accuracy)), accuracy.items(), strict=True):
        column.metric(f"{title(role)}: test accuracy", views.percent_text(value))


# -- the question ----------------------------------------------------------------------------------
def reveal(step: int) -> None:
    st.session_state[REVEALED.format(step)] = st.session_state.get(ANSWER.format(step))


def ask(step: int, plan, measured: dict | None = None) -> None:
    """The step's question; measured: what the step's view measured (the canary run's audit), if anything."""
    q = lesson.question(step, plan, measured)
    st.subheader("Your guess")
    guess = st.radio(q.prompt, q.options, index=None, key=ANSWER.format(step))
    # A callback runs before the page script, so the step's preview above (hidden until a guess) appears
    # on this same click, not on a second one.
    st.button("Check my answer", key=CHECK.format(step), disabled=guess is None, on_click=reveal, args=(step,))
    revealed = st.session_state.get(REVEALED.format(step))
    if revealed is not None:
        box = st.success if revealed == q.answer else st.warning
        verdict = "Right" if revealed == q.answer else f"Not quite: the answer is “{q.answer}”"
        box(f"**{verdict}.** {q.explanation}", icon=":material/lightbulb:")
