"""What the Trade-offs page draws: the closed-form curves and table, the sweep grid's controls, a sweep's
progress and the stored sweeps, and the request stream's controls and result. Drawn with st.*; the tables
and figures come from tradeoffs/views.py and tradeoffs/figures.py (pure), the sweep and the simulator run
from the page.
"""

from __future__ import annotations

import streamlit as st

from dashboard.shared import state
from dashboard.shared.fields import choice_kwargs, number_kwargs, widget_help
from dashboard.shared.jobs import CANCELLED, FAILED, SUCCEEDED
from dashboard.tradeoffs import figures as tradeoff_figures
from dashboard.tradeoffs import views as tv
from purge_engine import (
    AXES,
    DATASETS,
    DISTRIBUTIONS,
    MAX_REQUESTS,
    MODES,
    PurgeConfig,
    StreamResult,
    SweepGrid,
    field_label,
    list_sweeps,
    load_sweep,
    sweeps_dir,
    theory,
)

# Theory.
DATASET, N_TEACHERS, SLICES = "tradeoff_dataset", "tradeoff_n_teachers", "tradeoff_slices"
THEORY_CSV, THEORY_CHART = "tradeoff_theory_csv", "tradeoff_theory_chart"
SLICE_OPTIONS = [1, 2, 3, 4, 6, 8, 12, 16]
# Sweeps: each grid widget's key is "sweep_" + the field it sets: an axis of SweepGrid, its requests, or a field
# of its base PurgeConfig (label, help and range from that field's metadata).
SWEEP_BASE_FIELDS = ("dataset", "epochs", "student_fraction", "seed")
SWEEP_RUN, SWEEP_CANCEL, SWEEP_PICK = "sweep_run", "sweep_cancel", "sweep_pick"
SWEEP_JOB, SWEEP_ADOPTED = "sweep_job", "sweep_adopted"  # this session's sweep job; the job whose sweep was picked
SWEEP_CSV = {"layouts": "sweep_layouts_csv", "requests": "sweep_requests_csv", "accuracy": "sweep_accuracy_csv"}
GRID_OPTIONS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]
# Request-stream simulator.
SIM_CSV, SIM_CHART = "sim_csv", "sim_chart"
BASE = PurgeConfig(student_data="disjoint", student_fraction=0.5)  # the page's layouts: teacher-only samples exist
DEFAULT_GRID = SweepGrid()
RATIO = st.column_config.NumberColumn(format="%.2f")
SWEEP_POLL_S = 2.0  # each rerun ends in a full gc.collect() (~0.4 s here) that holds the GIL the sweep trains with


def csv_button(frame, label: str, file_name: str, key: str, help: str | None = None) -> None:
    st.download_button(label, frame.to_csv(index=False), file_name, "text/csv", key=key, icon=":material/download:",
                       help=help)


def keep(key: str, default) -> None:
    """Defaults set once, and kept when the user visits another page (which forgets unshown widgets)."""
    st.session_state[key] = st.session_state.get(key, default)


def number_columns(columns, help_of, format_of) -> dict:
    """st.column_config for a frame's columns: each a NumberColumn with its tooltip and format."""
    return {column: st.column_config.NumberColumn(column, help=help_of(column), format=format_of(column))
            for column in columns}


# -- 1. theory ----------------------------------------------------------------------------------
def theory_section(measured) -> tuple[str, int]:
    """The closed-form curves (with the picked sweep's points where its N_t matches) and their table;
    returns the dataset and N_t chosen, which the request stream uses too."""
    st.header("Closed-form speed-ups")
    keep(DATASET, "digits")
    keep(N_TEACHERS, 32)
    keep(SLICES, [1, 2, 4])
    left, middle, right = st.columns([2, 1, 2])
    dataset = left.selectbox("Dataset (for checkpoints, storage and the simulator)", list(DATASETS), key=DATASET,
                             format_func=lambda n: DATASETS[n].title)
    n_teachers = middle.number_input("Teachers N_t", min_value=1, max_value=1024, step=1, key=N_TEACHERS)
    slices = right.multiselect("Student slices r", SLICE_OPTIONS, key=SLICES, help="One curve per value.")
    if not slices:
        st.info("Choose at least one number of student slices r.", icon=":material/info:")
        return dataset, n_teachers
    matching = None if measured is None else measured[(measured["N_t"] == n_teachers)
                                                      & measured["r"].isin(slices)]
    st.plotly_chart(tradeoff_figures.speedup_figure(tv.theory_frame(n_teachers, slices), matching), key=THEORY_CHART)
    st.caption(f"c = N_t/N_s teachers per student. Teacher-side: expected speed-up of PURGE's students over the "
               f"baseline student for one request on a uniformly random teacher, N_s·6c(cr+1)/(4c²r+3cr+3c−r+3) "
               f"(at least N_s, N_t when c = 1); teacher retraining is the same for both and left out. "
               f"Student-side: 3R/(2R+1) with R = cr steps. r barely moves the teacher-side curve; on the student "
               f"side more slices mean cheaper rollbacks. Points: the sweep picked below, where its N_t is "
               f"{n_teachers}.")
    theory_table(dataset, n_teachers, slices)
    return dataset, n_teachers


def theory_table(dataset: str, n_teachers: int, slices) -> None:
    base = BASE.replace(dataset=dataset)
    table, notes = tv.theory_table(n_teachers, slices, base, DATASETS[dataset].n_train)
    st.dataframe(table, hide_index=True,
                 column_config=number_columns(table.columns, tv.theory_column_help, tv.theory_column_format))
    st.caption(f"{tv.THEORY_LEGEND}. Checkpoints and storage of a run with that layout on "
               f"{DATASETS[dataset].title} ({BASE.epochs} "
               f"epochs, {BASE.teacher_slices} teacher slices, half the pool held out as student data), for the "
               "teachers and all three student methods. They grow with r but not with N_s: the students' chunks "
               "always add up to N_t.")
    for note in notes:
        st.caption(f":orange[No storage for {note}]")
    csv_button(table, "Download the table (CSV)", f"tradeoffs-theory-nt{n_teachers}.csv", THEORY_CSV)


# -- 2. sweeps --------------------------------------------------------------------------------------
def keep_grid() -> None:
    keep("sweep_requests", DEFAULT_GRID.requests)
    for name in AXES:
        keep(f"sweep_{name}", list(getattr(DEFAULT_GRID, name)))
    for name in SWEEP_BASE_FIELDS:
        keep(f"sweep_{name}", getattr(DEFAULT_GRID.base, name))


def grid_controls() -> SweepGrid:
    keep_grid()
    top, bottom = st.columns([2, 1.2, 2, 1.6]), st.columns(4)
    base = {"dataset": top[0].selectbox(**choice_kwargs("dataset"), key="sweep_dataset",
                                        format_func=lambda n: DATASETS[n].title)}
    axes = {name: column.multiselect(field_label(name), options, key=f"sweep_{name}", help=widget_help(name))
            for column, name, options in zip(top[1:], AXES, (GRID_OPTIONS, GRID_OPTIONS, SLICE_OPTIONS), strict=True)}
    base["epochs"] = bottom[0].number_input(**number_kwargs("epochs"), key="sweep_epochs")
    requests = bottom[1].number_input("Requests K per side", min_value=1, max_value=MAX_REQUESTS, step=1,
                                      key="sweep_requests")
    fraction = number_kwargs("student_fraction")  # a sweep's student data is disjoint: the teachers need the rest
    fraction["max_value"] -= fraction["step"]
    base["student_fraction"] = round(bottom[2].slider(**fraction, key="sweep_student_fraction"), 2)
    base["seed"] = bottom[3].number_input(**number_kwargs("seed"), key="sweep_seed")
    return SweepGrid(DEFAULT_GRID.base.replace(**base), requests=requests, **axes)


def job_status(job, snap) -> None:
    """The sweep's live progress, or how it ended (snap: taken before the stored sweeps were listed, so a
    sweep that says it succeeded is in that list)."""
    if job is None:
        return
    if snap.running:
        sweep_progress(job)
    elif snap.status == SUCCEEDED:
        st.success(f"{snap.title} finished in {snap.seconds:.0f} s and is stored: it is picked below.",
                   icon=":material/check_circle:")
    elif snap.status == CANCELLED:
        st.warning("Sweep cancelled. Nothing was stored: a sweep keeps its results only once every layout has "
                   "finished, and its scratch runs are deleted.", icon=":material/block:")
    elif snap.status == FAILED:
        st.error(f"The sweep failed: {snap.error}", icon=":material/error:")


@st.fragment(run_every=SWEEP_POLL_S)
def sweep_progress(job) -> None:
    snap = job.snapshot()
    if not snap.running:
        st.rerun()  # the whole page: the new sweep joins the list below
    p = snap.progress
    st.progress(p.fraction, text=f"{snap.title}: {p.phase or 'starting'}")
    st.caption(f"{p.sample_steps:,} of {p.total_sample_steps:,} predicted sample-steps trained · "
               f"{snap.seconds:.0f} s")
    st.button("Cancel the sweep", key=SWEEP_CANCEL, on_click=job.cancel, disabled=job.cancelling,
              icon=":material/stop:", help="Stops at the next step; nothing of this sweep is kept.")


@st.cache_data(show_spinner=False, max_entries=64)
def read_sweep(path: str, mtime: float) -> dict:
    return load_sweep(path)


def stored_sweeps() -> dict[str, dict]:
    """Finished sweeps under the runs directory, newest first, by sweep id."""
    found = {}
    for path in list_sweeps(state.runs_dir()):
        try:
            found[path.parent.name] = read_sweep(str(path), path.stat().st_mtime)
        except ValueError:
            continue  # an unreadable file is left out of the list
    return found


def adopt_finished_sweep(job, snap, sweeps: dict[str, dict]) -> None:
    """Pick the sweep this session's job just stored, once."""
    mine = job is not None and job.job_id == st.session_state.get(SWEEP_JOB)
    if not mine or st.session_state.get(SWEEP_ADOPTED) == job.job_id:
        return
    if snap.status == SUCCEEDED and snap.result and snap.result["sweep_id"] in sweeps:
        st.session_state[SWEEP_PICK] = snap.result["sweep_id"]
        st.session_state[SWEEP_ADOPTED] = job.job_id


def picked(sweeps: dict[str, dict]) -> dict | None:
    if not sweeps:
        return None
    if st.session_state.get(SWEEP_PICK) not in sweeps:
        st.session_state[SWEEP_PICK] = next(iter(sweeps))
    return sweeps[st.session_state[SWEEP_PICK]]


def sweep_results(sweeps: dict[str, dict]) -> None:
    st.subheader("Stored sweeps")
    if not sweeps:
        st.info(f"No sweep stored under `{sweeps_dir(state.runs_dir())}` yet: run one above.", icon=":material/info:")
        return
    sweep_id = st.selectbox("Sweep", list(sweeps), key=SWEEP_PICK, format_func=lambda s: tv.sweep_label(sweeps[s]))
    results = sweeps[sweep_id]
    measured = tv.measured_frame(results)
    st.plotly_chart(tradeoff_figures.speedup_figure(tv.sweep_curves(measured), measured), key="sweep_speedup_chart")
    k = results["grid"]["requests"]
    st.caption(f"{tv.THEORY_LEGEND.split(';')[0]}. Diamonds: measured in sample-steps, the ratio of the totals "
               f"over the K = {k} requests of each side; bars: the smallest and largest single request. Requests hit "
               "the teachers (students) in a random order, so their mean cost is that of uniform requests. The sweep "
               f"ran in {results['seconds']:.0f} s with {results['environment']['threads']} torch thread(s).")
    st.dataframe(measured[tv.speedup_columns(measured)], hide_index=True, column_config=measured_columns(measured))
    csv_button(measured, "Download the layouts (CSV)", f"sweep-{sweep_id}-layouts.csv", SWEEP_CSV["layouts"],
               help="Every column: speed-ups, accuracy, checkpoints, storage and seconds per layout.")
    accuracy_view(results, measured, sweep_id)
    with st.expander("Every request the sweep served"):
        requests = tv.request_frame(results)
        st.dataframe(requests, hide_index=True, column_config={"Speed-up": RATIO, "PURGE seconds": RATIO,
                                                                "Baseline seconds": RATIO})
        st.caption("Sample-steps are measured; *predicted* is what the plan said before the request ran. Reference: "
                   "the baseline students (teacher side) or that student from scratch (student side).")
        csv_button(requests, "Download the requests (CSV)", f"sweep-{sweep_id}-requests.csv", SWEEP_CSV["requests"])


def measured_columns(measured) -> dict:
    return number_columns(measured.columns, tv.measured_column_help, tv.measured_column_format)


def accuracy_view(results: dict, measured, sweep_id: str) -> None:
    st.subheader("The accuracy cost of isolation")
    frame = tv.accuracy_frame(results)
    st.plotly_chart(tradeoff_figures.accuracy_figure(frame), key="sweep_accuracy_chart")
    st.caption("Test accuracy after training, before any request. More students means fewer teachers behind each "
               "student's labels and less data per student: faster forgetting, paid for in accuracy.")
    st.dataframe(measured[tv.accuracy_columns(measured)], hide_index=True, column_config=measured_columns(measured))
    csv_button(frame, "Download the accuracies (CSV)", f"sweep-{sweep_id}-accuracy.csv", SWEEP_CSV["accuracy"])


# -- 3. the request stream ----------------------------------------------------------------------------
def stream_controls(n_teachers: int) -> dict:
    divisors = theory.divisors(n_teachers)
    if st.session_state.get("sim_n_students") not in divisors:  # N_t changed
        st.session_state["sim_n_students"] = min(divisors, key=lambda d: abs(d - n_teachers / 4))
    for key, default in (("sim_slices", 1), ("sim_requests", 50), ("sim_mode", MODES[0]), ("sim_batch_size", 10),
                         ("sim_distribution", DISTRIBUTIONS[0]), ("sim_skew", 1.0), ("sim_seed", 0),
                         ("sim_log", True)):
        keep(key, default)
    top = st.columns(4)
    values = {"n_students": top[0].selectbox("Students N_s", divisors, key="sim_n_students"),
              "student_slices": top[1].number_input("Student slices r", 1, 16, step=1, key="sim_slices"),
              "requests": top[2].number_input("Requests K", 1, 500, step=1, key="sim_requests"),
              "seed": top[3].number_input("Seed", 0, 2**31, step=1, key="sim_seed")}
    st.session_state["sim_batch_size"] = min(st.session_state["sim_batch_size"], values["requests"])
    bottom = st.columns(4)
    values["mode"] = bottom[0].radio("Serving", MODES, horizontal=True, key="sim_mode")
    values["batch_size"] = bottom[1].number_input("Batch size B", 1, values["requests"], step=1, key="sim_batch_size",
                                                  disabled=values["mode"] == "sequential")
    values["distribution"] = bottom[2].radio("Teachers hit", DISTRIBUTIONS, horizontal=True, key="sim_distribution")
    values["skew"] = bottom[3].slider("Skew s (Zipf)", 0.0, 3.0, step=0.1, key="sim_skew",
                                      disabled=values["distribution"] == "uniform",
                                      help="Teacher i is hit with weight 1/i^s: larger s piles requests onto the "
                                           "first teachers.")
    return values


def stream_view(result: StreamResult, config: PurgeConfig) -> None:
    """The stream's totals per cost row under PURGE's advantage (students only), then each policy's whole
    bill against retraining everything: the cumulative figure with the break-even points, and the CSV."""
    for column, metric in zip(st.columns(4), tradeoff_figures.stream_totals(result), strict=True):
        column.metric(metric["label"], metric["value"], help=metric["help"])
    st.caption("Teacher retraining is the same for both methods and is its own total; PURGE's advantage divides "
               "the two students' totals beside it.")
    st.subheader("Against retraining everything")
    for column, metric in zip(st.columns(3), tradeoff_figures.bill_totals(result), strict=True):
        column.metric(metric["label"], metric["value"])
    log_y = st.toggle("Logarithmic cost axis", key="sim_log")
    st.plotly_chart(tradeoff_figures.stream_figure(result, log_y), key=SIM_CHART)
    st.markdown(tradeoff_figures.break_even_text(result))
    st.caption(f"{DATASETS[config.dataset].title}, {config.epochs} epochs, {config.teacher_slices} teacher slices, "
               "half the pool held out as student data. Each method's bill is the teacher retraining plus its "
               "students; full retrain = every teacher and every PURGE student from scratch. Batched: each "
               "constituent restarts once per batch, from its earliest affected step.")
    csv_button(tradeoff_figures.stream_frame(result), "Download the stream (CSV)",
               f"request-stream-nt{config.n_teachers}.csv", SIM_CSV)
