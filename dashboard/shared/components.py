"""Page parts shared by several pages: the run sidebar, the sample gallery and the live view of a background job.

Each draws with st.* from engine output and a job snapshot; none does engine work itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.shared import grid, state, views
from dashboard.shared.jobs import CANCELLED, FAILED, SUCCEEDED, Job, JobBusy, Snapshot
from purge_engine import (
    DATASETS,
    FULL_RETRAIN_METHODS,
    CheckpointError,
    Experiment,
    device_label,
    recipes,
    title,
)

POLL_S = 0.5  # how often a page polls a running job's snapshot
NO_RUN = "— none —"

NUMBERS = st.column_config.NumberColumn(format="localized")

GALLERY_COLUMNS = 6  # wide enough for a caption on one line
# Square pixels when fitted; and a click anywhere on a gallery cell (the image included) ticks its box:
# the checkbox label's ::after covers the whole cell (the column is the nearest positioned box).
GALLERY_CSS = """<style>
.st-key-sample_grid img { image-rendering: pixelated; }
.st-key-sample_grid [data-testid="stColumn"] { position: relative; }
.st-key-sample_grid [data-testid="stColumn"] [data-testid="stVerticalBlock"],
.st-key-sample_grid [data-testid="stColumn"] [data-testid="stElementContainer"],
.st-key-sample_grid [data-testid="stColumn"] [data-testid="stCheckbox"],
.st-key-sample_grid [data-testid="stColumn"] [data-testid="stCheckbox"] label { position: static; }
.st-key-sample_grid [data-testid="stCheckbox"] label::after {
  content: ""; position: absolute; inset: 0; z-index: 1; cursor: pointer; }
.st-key-sample_grid [data-testid="stCheckbox"] label:has(input:disabled)::after { cursor: not-allowed; }
.st-key-sample_grid [data-testid="stCheckbox"] label * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere; }
</style>"""
GALLERY_LEGEND = ("Under each image: #sample id · label · T3/s2 = Teacher 3, slice 2 · S1/c2/s1 = Student 1, "
                  "chunk 2, slice 1 (T – / S –: in no teacher / no student shard).")


# -- the sidebar: current run and the run picker ----------------------------------------------------
def run_sidebar() -> None:
    """Pick the current run among the run directories on disk; show what it is."""
    bar = st.sidebar
    names = state.run_names()
    current = state.current_run_dir()
    options = [NO_RUN, *names]
    if st.session_state.get(state.RUN_PICKER) != (current.name if current else NO_RUN):
        st.session_state[state.RUN_PICKER] = current.name if current else NO_RUN  # follow the URL
    bar.selectbox("Run", options, key=state.RUN_PICKER, on_change=_picked,
                  help=f"Run directories under `{state.runs_dir()}`: everything a run trained and forgot is "
                       "stored there and survives a restart.")
    bar.caption(grid.execution_text(*state.execution(), state.cluster()))
    if (gpu := state.device_text()) is not None:
        bar.caption(gpu)
    if current is None:
        bar.caption("No run selected: train one on the Setup page, or pick one above.")
        return
    try:
        exp = state.open_run(current)
    except ValueError as err:
        bar.error(str(err), icon=":material/error:")
        return
    config = exp.config
    bar.caption(f"**{DATASETS[config.dataset].title}** · {config.n_teachers} teachers → {config.n_students} "
                f"students · slices {config.teacher_slices}/{config.student_slices} · {config.epochs} epochs · "
                f"seed {config.seed}  \nDevice: {device_label(exp.device)} · "
                f"{len(exp.plan.forgotten)} samples forgotten")
    job = state.registry().running(current)
    if job is not None:
        bar.info(f"Running: {job.title}", icon=":material/autorenew:")


def _picked() -> None:
    """The run picker's on_change. Not a pick when it fires in a fragment's own rerun (a job's poll):
    the sidebar moves the picker to the URL's run itself (after Train, say), and the browser can replay
    its widget states from before that move with the first poll, which it requests while the page is
    still drawing; taken as a pick, that stale value cleared the run and the job from the URL. A real
    pick in the sidebar always reruns the whole app."""
    if in_fragment_rerun():
        return
    name = st.session_state[state.RUN_PICKER]
    state.select_run(None if name == NO_RUN else name)


def in_fragment_rerun() -> bool:
    """True while a fragment reruns on its own (a job's poll). A widget outside every fragment that
    the page sets itself must ignore its on_change then: the change is a stale replay, not a click."""
    ctx = get_script_run_ctx()
    return bool(getattr(ctx, "fragment_ids_this_run", None))  # Streamlit's run context (1.37+)


def open_current_run() -> Experiment | None:
    """The current run opened, or None with a message saying how to get one."""
    run_dir = state.current_run_dir()
    if run_dir is None:
        st.info("No run selected. Train one on the **Setup** page, or pick an existing run in the sidebar.",
                icon=":material/info:")
        return None
    try:
        return state.open_run(run_dir)
    except (ValueError, CheckpointError) as err:
        st.error(str(err), icon=":material/error:")
        repair_offer(run_dir)
        return None


REPAIR = "repair_run"


def repair_result(run_dir) -> None:
    """What the latest repair job on this run found and proved, once it has finished."""
    job = state.registry().latest(run_dir, kind="repair")
    snap = None if job is None else job.snapshot()
    if snap is None or snap.running or not snap.result:
        return
    result = snap.result
    box = st.success if result.get("run_whole") and result.get("proved") else st.warning
    box(f"Check and repair: {len(result.get('damaged', []))} damaged file(s) found, "
        f"{len(result.get('repaired', []))} repaired; every rebuilt file equals its record: "
        f"{result.get('proved')}; the run is whole: {result.get('run_whole')}.", icon=":material/build:")


def repair_offer(run_dir) -> None:
    """A damaged run: check it and rebuild exactly the damaged steps, proved against the manifest
    (recipes.repair, as `python -m purge_engine check --run R --repair`), as a job."""
    repair_result(run_dir)
    reason = busy_reason(run_dir)
    if st.button("Check and repair this run", key=REPAIR, disabled=reason is not None, help=reason,
                 icon=":material/build:"):
        def work(on_event, should_stop):
            return recipes.repair(run_dir, on_event=on_event)

        if start_job(run_dir, "repair", f"Repairing {Path(run_dir).name}", work):
            st.rerun()


# -- the sample gallery (Setup and Forget) -------------------------------------------------------
def sample_gallery(bundle, plan, page_key: str, page_label: str, on_pick: Callable[[int], None] | None = None,
                   picked=frozenset(), order=None, notes: dict[int, str] | None = None) -> None:
    """One page of the train pool (in the container state.SAMPLE_GRID), each image placed in the plan.

    Without on_pick the placement is the image's caption. With it, a checkbox per image (key pick_<id>)
    ticked when the id is in `picked`, calling on_pick(id) on a click; forgotten samples are disabled.
    The page sets the boxes itself on every run, so a job's poll replaying older ticks changes nothing.
    order: the sample ids to page through, in that order (default: the whole pool in id order);
    notes: sample id -> a few words added to its caption."""
    order = np.arange(bundle.n_train, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    pages = views.n_pages(order.size)
    if st.session_state.get(page_key, 1) > pages:  # a smaller dataset was picked
        st.session_state[page_key] = pages
    st.caption(GALLERY_LEGEND)
    page = st.columns([1, 5])[0].number_input(f"{page_label} (of {pages})", min_value=1, max_value=pages, step=1,
                                              key=page_key)
    ids = order[views.page_ids(order.size, page)]
    images = views.upscale(bundle.images(ids)) if bundle.texts is None else bundle.sample_texts(ids)  # text: words
    captions = [f"{c} · {notes[int(i)]}" if notes and int(i) in notes else c
                for c, i in zip(views.sample_grid_frame(bundle, plan, ids)["caption"], ids, strict=True)]
    st.html(GALLERY_CSS)
    with st.container(key=state.SAMPLE_GRID):
        for start in range(0, len(ids), GALLERY_COLUMNS):
            row = range(start, min(start + GALLERY_COLUMNS, len(ids)))
            for column, i in zip(st.columns(GALLERY_COLUMNS)[: len(row)], row, strict=True):
                _gallery_cell(column, images[i], captions[i], int(ids[i]), plan.forgotten, on_pick, picked)


def _gallery_cell(column, image, caption: str, sample_id: int, forgotten, on_pick, picked) -> None:
    if on_pick is None:
        _show_sample(column, image, caption)
        return
    _show_sample(column, image)
    gone = sample_id in forgotten
    key = f"{state.PICK_PREFIX}{sample_id}"
    st.session_state[key] = sample_id in picked
    column.checkbox(f"#{sample_id} forgotten" if gone else caption, key=key, disabled=gone, on_change=on_pick,
                    args=(sample_id,))


def _show_sample(column, sample, caption: str | None = None) -> None:
    """An image, or in its place a text sample's words (text datasets such as rotten-tomatoes)."""
    if isinstance(sample, str):
        column.markdown(sample if caption is None else f"{sample}  \n*{caption}*")
    else:
        column.image(sample, caption=caption, width="stretch", output_format="PNG")


# -- jobs --------------------------------------------------------------------------------------
def start_job(run_dir, kind: str, title: str, work: Callable, total_sample_steps: int = 0,
              count_reused: bool = False) -> Job | None:
    """Start a background job on the run and put it in the URL; show why when it cannot start."""
    try:
        job = state.registry().start(run_dir, kind, title, work, total_sample_steps, count_reused)
    except JobBusy as err:
        st.warning(str(err), icon=":material/hourglass:")
        return None
    state.show_job(job)
    return job


def busy_reason(run_dir) -> str | None:
    """Why a new job cannot start on this run now (None when it can)."""
    job = state.registry().running(run_dir) if run_dir is not None else None
    return None if job is None else f"Disabled: {job.title} is running on this run (one job per run at a time)."


def job_view(job: Job, shape: dict, draw_result: Callable[[Snapshot], None] | None = None,
             grid_key: str = state.RETRAIN_GRID) -> None:
    """A job's live progress: polled while it runs; once it ends, the page reruns to show the result.
    shape: the grid's constituents and steps (grid.grid_shape); grid_key: its container's key. A full
    retrain after a forget request is drawn in a panel of its own below (progress.Progress.full_retrain)."""
    if job.snapshot().running:
        _poll(job, shape, grid_key)
        return
    snap = job.snapshot()
    _draw_job(snap, shape, grid_key, live=False)
    if snap.status in (FAILED, CANCELLED):
        st.error(snap.error, icon=":material/error:") if snap.status == FAILED else st.warning(
            snap.error, icon=":material/block:")
        if snap.status == FAILED and snap.damaged:  # the engine found a damaged file (RunDamaged)
            repair_offer(job.run_dir)
    elif draw_result is not None:
        draw_result(snap)


@st.fragment(run_every=POLL_S)
def _poll(job: Job, shape: dict, grid_key: str) -> None:
    snap = job.snapshot()
    if not snap.running:
        st.rerun()  # the whole page: its buttons and results depend on the job having ended
    _draw_job(snap, shape, grid_key, live=True)
    st.button("Cancel", key=state.CANCEL, on_click=job.cancel, disabled=job.cancelling, icon=":material/stop:",
              help="Stops at the next step boundary; every finished step stays checkpointed.")


FULL_RETRAIN_TITLE = "Full retrain from scratch (for comparison)"
FULL_RETRAIN_CAPTION = ("Every teacher and every {students} trained again from its seeded initialisation on the "
                        "data without the samples: what unlearning avoids. Drawn apart from the request above, "
                        "whose grid shows what the request itself kept and retrained.")


def _draw_job(snap: Snapshot, shape: dict, grid_key: str, live: bool) -> None:
    """The job's bar, counts and grid; after a full retrain began, the request's as it ended and the full
    retrain's in its own panel, with its own bar and grid."""
    p, full = snap.progress, snap.progress.full_retrain
    ok = snap.status == SUCCEEDED
    if full is None:
        status = p.last if live else f"{snap.status} in {snap.seconds:.1f} s"
        _draw_progress(p, f"{snap.title}: {status}", p.fraction if live or not ok else 1.0,
                       snap.seconds, p.seconds_left(snap.seconds) if live else None, shape, grid_key)
        return
    seconds = snap.request_seconds  # the retraining's own seconds are the cost table's
    _draw_progress(p, f"{snap.title}: done in {seconds:.1f} s, scoring and evidence included", 1.0, seconds, None,
                   shape, grid_key)
    seconds = snap.full_retrain_seconds
    with st.container(key=state.FULL_RETRAIN_PANEL):
        st.subheader(FULL_RETRAIN_TITLE)
        st.caption(FULL_RETRAIN_CAPTION.format(students=" and ".join(title(m) for m in FULL_RETRAIN_METHODS)))
        status = full.last if live else f"{snap.status} in {seconds:.1f} s"
        _draw_progress(full, f"Full retrain: {status}", full.fraction if live or not ok else 1.0, seconds,
                       full.seconds_left(seconds) if live else None,
                       {key: n for key, n in shape.items() if key[0] in ("teacher", *FULL_RETRAIN_METHODS)},
                       state.FULL_RETRAIN_GRID)


def _draw_progress(p, text: str, fraction: float, seconds: float, left: float | None, shape: dict,
                   grid_key: str) -> None:
    """One fold (progress.Progress): its bar, what it trained and kept, and its constituents x steps grid."""
    st.progress(fraction, text=text)
    counts = grid.grid_counts(p.cells)
    done = f"{p.sample_steps:,}" + (f" of {p.total_sample_steps:,} predicted" if p.total_sample_steps else "")
    st.caption(f"{done} sample-steps trained · steps kept: "
               f"{counts['kept']}, restored: {counts['restored']}, retrained: {counts['done']} · soft-label "
               f"slices computed: {p.labelled}, reused: {p.label_reused} · {seconds:.1f} s"
               + ("" if left is None else f" · about {left:.0f} s left at this job's rate"))
    with st.container(key=grid_key):
        st.html(grid.retrain_grid_html(shape, p.cells, p.workers))
    if p.workers:  # steps an executor ran outside this process (Ray): say where
        workers = grid.worker_table(p.workers)
        n = workers["Worker"].nunique()
        with st.expander(f"Workers: {n} process{'es' * (n != 1)} trained these steps (hover a cell for its worker)"):
            st.dataframe(workers, hide_index=True)
