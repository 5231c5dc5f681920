"""Trade-offs: the closed-form speed-ups against N_s and student slices, measured points from sweeps
(run here as background jobs and stored under the runs directory), the accuracy cost of isolation,
and a stream of forget requests priced from the plan (DESIGN sections 7 and 11)."""

from pathlib import Path

import streamlit as st

from dashboard.shared import components, state
from dashboard.tradeoffs import parts
from dashboard.tradeoffs import views as tv
from purge_engine import (
    DATASETS,
    PurgeConfig,
    SweepGrid,
    draw_requests,
    make_plan,
    predicted_sample_steps,
    run_sweep,
    simulate_stream,
    sweeps_dir,
)


@st.cache_data(show_spinner=False, max_entries=64)
def sweep_work(grid: dict) -> int:
    """Sample-steps the sweep will train (its progress bar's total); ValueError for a bad grid."""
    return predicted_sample_steps(SweepGrid.from_dict(grid))


def sweep_section(job, snap) -> None:
    st.header("Sweeps: measured against theory")
    st.markdown("A sweep trains every layout of a grid (teachers and the three student methods), measures test "
                "accuracy, then serves **K** random teacher-side requests (a sample in a teacher shard only) "
                "and **K** student-side requests (a sample in a student shard only), one at a time. The defaults "
                "finish in about a minute on 2 CPU cores.")
    grid = parts.grid_controls()
    try:
        total = sweep_work(grid.to_dict())
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
        total = None
    if total is not None:
        skipped = f" Skipped: {'; '.join(grid.skipped())}." if grid.skipped() else ""
        st.caption(f"{len(grid.layouts())} layouts, {total:,} sample-steps to train in all.{skipped}")
    root = sweeps_dir(state.runs_dir())
    busy = components.busy_reason(root)
    reason = busy or ("Disabled: fix the grid first." if total is None else None)
    if st.button("Run sweep", key=parts.SWEEP_RUN, type="primary", disabled=reason is not None, help=reason,
                 icon=":material/play_arrow:"):
        start_sweep(grid, root, total)
    parts.job_status(job, snap)


def start_sweep(grid: SweepGrid, root: Path, total: int) -> None:
    executor = state.job_executor()  # the executor chosen on Setup, as train and forget jobs use

    def work(on_event, should_stop):
        state.connect(executor)
        return run_sweep(grid, state.runs_dir(), tv.per_layout(on_event), should_stop, executor=executor)

    title = f"Sweep of {len(grid.layouts())} layouts"
    job = components.start_job(root, "sweep", title, work, total)
    if job is not None:
        st.session_state[parts.SWEEP_JOB] = job.job_id
        st.rerun()


def sweep_job(root: Path):
    """The sweep running now (from any session), else the last one this session started."""
    jobs = state.registry()
    return jobs.running(root) or jobs.get(st.session_state.get(parts.SWEEP_JOB))


@st.cache_data(show_spinner="Pricing the requests…", max_entries=32)
def simulate(config: dict, n_pool: int, requests: int, mode: str, batch_size: int, distribution: str, skew: float,
             seed: int):
    plan = make_plan(PurgeConfig(**config), n_pool)
    ids = draw_requests(plan, requests, distribution, skew, seed)
    return simulate_stream(plan, ids, mode, batch_size)


def stream_section(dataset: str, n_teachers: int) -> None:
    st.header("A stream of forget requests")
    st.markdown("K teacher-side requests, one sample each, priced exactly from the plan (nothing is trained): "
                "PURGE and the baseline retrain what each request touched; the naive policy retrains everything "
                "after every request. Where does retraining everything **once**, at the end, become cheaper?")
    values = parts.stream_controls(n_teachers)
    config = parts.BASE.replace(dataset=dataset, n_teachers=n_teachers, n_students=values.pop("n_students"),
                                student_slices=values.pop("student_slices"))
    try:
        config.validate()
        result = simulate(config.to_dict(), DATASETS[dataset].n_train, **values)
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
        return
    parts.stream_view(result, config)


st.title("Trade-offs")
st.markdown("More students isolate the teachers better, so a forget request retrains less; fewer teachers behind "
            "each student's labels cost accuracy. Slices buy cheaper rollbacks with more checkpoints.")
sweep = sweep_job(sweeps_dir(state.runs_dir()))
sweep_snap = None if sweep is None else sweep.snapshot()  # before listing: a succeeded sweep is on disk by then
sweeps = parts.stored_sweeps()
parts.adopt_finished_sweep(sweep, sweep_snap, sweeps)
current = parts.picked(sweeps)
dataset, n_teachers = parts.theory_section(None if current is None else tv.measured_frame(current))
st.divider()
sweep_section(sweep, sweep_snap)
parts.sweep_results(sweeps)
st.divider()
stream_section(dataset, n_teachers)
