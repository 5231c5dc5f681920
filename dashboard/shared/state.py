"""Session-state keys, query parameters and cached resources shared by the dashboard pages.

Widget keys are the PurgeConfig field names they set (STYLE rule 11), so a page builds its
config as `PurgeConfig(**{key: value})` and tests find each widget by the same name.

The current run and job live in the URL (`?run=<name>&job=<id>`), so a reload or a shared link
finds them; runs live under $PURGE_RUNS_DIR (default `runs/`), so work survives a restart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from dashboard.shared.jobs import SUCCEEDED, Job, JobRegistry, connect
from purge_engine import (
    DEFAULT_RUNS_DIR,
    DatasetBundle,
    DatasetUnavailable,
    Experiment,
    PurgeConfig,
    execution_choice,
    list_runs,
    load_dataset,
    recipes,
    run_dir_under,
)

RUNS_DIR_ENV = "PURGE_RUNS_DIR"

# Layout widgets on the Setup page: each key is the PurgeConfig field it sets.
DATASET = "dataset"
N_TEACHERS = "n_teachers"
N_STUDENTS = "n_students"
TEACHER_SLICES = "teacher_slices"
STUDENT_SLICES = "student_slices"
STUDENT_FRACTION = "student_fraction"
STUDENT_DATA = "student_data"
EPOCHS = "epochs"
SEED = "seed"
TEACHER_MODEL = "teacher_model"
STUDENT_MODEL = "student_model"
LAYOUT_KEYS = (DATASET, N_TEACHERS, N_STUDENTS, TEACHER_SLICES, STUDENT_SLICES, STUDENT_FRACTION, STUDENT_DATA,
               EPOCHS, SEED)
SETUP_CONFIG = "setup_config"  # the Setup page's last valid config (not a widget: survives page changes)

# Run and job.
RUN_PICKER = "run_picker"  # sidebar selectbox of run directories
RUN_NAME = "run_name"  # Setup: name of the run directory to train into
TRAIN = "train"  # Setup: the Train button
CANCEL = "cancel"  # any page: cancel the job shown
QUERY_RUN, QUERY_JOB = "run", "job"

# Execution (not part of a run's identity): where the jobs this session starts run.
EXECUTOR = "executor"  # Setup: radio, "local" or "ray" (make_executor's names, as the CLI's --executor)
RAY_ADDRESS = "ray_address"  # Setup: text box, empty = start a local Ray cluster (the CLI's --ray-address)
EXECUTION = "execution"  # (executor, ray_address or None) last chosen on Setup (not a widget: every page reads it)
LANES = "lanes"  # Setup: lanes per group for the lanes executor, 0 = chosen for the device (the CLI's --lanes)
LANES_CHOICE = "lanes_choice"  # the last LANES chosen (not a widget: survives pages without the sidebar box)
EXECUTOR_TITLES = {"auto": "The run's own path (a new run: lanes on a GPU, else in this process)",
                   "local": "In this process", "ray": "Ray (all cores, or a cluster)",
                   "lanes": "Lanes (W at once: the GPU path)"}

# Forget page.
SELECTED = "selected"  # set of sample ids picked for forgetting (0-based, engine ids)
PICK_PREFIX = "pick_"  # gallery checkbox of sample i: f"pick_{i}"
FORGET_PAGE = "forget_page"
BY_CLASS = "by_class"
ADD_CLASS = "add_class"
BY_TEACHER = "by_teacher"
ADD_TEACHER = "add_teacher"
BY_IDS = "by_ids"
ADD_IDS = "add_ids"
RANDOM_K = "random_k"
ADD_RANDOM = "add_random"
CLEAR = "clear_selection"
FULL_RETRAIN = "full_retrain"
FORGET = "forget"
VERIFY = "verify"
FINISH_PENDING = "finish_pending"
GALLERY_ORDER = "gallery_order"  # radio: "id" (the pool in id order) or "memorised" (most memorised first)
MEMORISED_LAST = "memorised_last"  # (run dir, ranking) last computed: shown while a job runs (not a widget)
EVIDENCE = "evidence"  # container of a request's evidence of forgetting (CSS class st-key-evidence)

# Other widgets and containers.
GALLERY_PAGE = "gallery_page"
SAMPLE_GRID = "sample_grid"  # container key: the browser sees CSS class st-key-sample_grid
RETRAIN_GRID = "retrain_grid"  # container of the live constituents x steps grid
FULL_RETRAIN_PANEL = "full_retrain_panel"  # a forget job's full retrain, drawn apart from the request
FULL_RETRAIN_GRID = "full_retrain_grid"  # its grid
VERIFICATION = "verification"  # Forget page: the Verify button, its verdict and its own progress
VERIFY_GRID = "verify_grid"  # the from-scratch reference's grid, inside VERIFICATION


@st.cache_resource(show_spinner="Loading the dataset…")
def load_bundle(name: str, data_root: str) -> DatasetBundle:
    """The dataset, loaded once per process and shared by every session (read-only).

    Raises DatasetUnavailable (not cached, so a later call finds files that arrive meanwhile).
    """
    return load_dataset(name, data_root=data_root, download=False)


@st.cache_data(show_spinner="Measuring this machine's training speed…", max_entries=32)
def predicted_training_seconds(config_json: str) -> float | None:
    """Seconds training this layout should take here: its exact size (training_cost, job_steps) over
    throughput measured once per layout on this machine (eta.calibrate: a fraction of a second).
    None when the dataset is not available."""
    from purge_engine import training_seconds

    config = PurgeConfig.from_json(config_json)
    try:
        bundle = load_bundle(config.dataset, config.data_root)
    except DatasetUnavailable:
        return None
    return training_seconds(config, bundle, runs_dir() / ".calibration")


@st.cache_resource(on_release=JobRegistry.shutdown)
def registry() -> JobRegistry:
    """Every background job of this server process, shared by all sessions."""
    return JobRegistry()


# -- the current run ---------------------------------------------------------------------------
def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or DEFAULT_RUNS_DIR)


def run_names() -> list[str]:
    """Run directories under runs_dir(), newest first."""
    return [path.name for path in list_runs(runs_dir())]


def run_dir_for(name: str) -> Path:
    """The directory of the run called `name`, strictly under runs_dir(): a run name is a name, never a
    path (store.check_run_name). ValueError naming run_name and what it may be otherwise."""
    return run_dir_under(runs_dir(), name)


def _param(name: str) -> str | None:
    """A query parameter, restored from the session when a page switch dropped it from the URL."""
    value = st.query_params.get(name)
    remembered = st.session_state.get(f"query_{name}")
    if value is None and remembered is not None:
        st.query_params[name] = value = remembered
    st.session_state[f"query_{name}"] = value
    return value


def _set_param(name: str, value: str | None) -> None:
    st.session_state[f"query_{name}"] = value
    if value is None:
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = value


def current_run_dir() -> Path | None:
    """The run named in the URL, when it exists."""
    name = _param(QUERY_RUN)
    if not name or name not in run_names():  # a whitelist: a link's ?run=../x names no run listed there
        return None
    return runs_dir() / name


def select_run(name: str | None) -> None:
    """Make `name` the current run (in the URL); None clears it. The job of another run is dropped;
    selecting the current run again keeps its job."""
    name = name or None
    if name != _param(QUERY_RUN):
        _set_param(QUERY_JOB, None)
    _set_param(QUERY_RUN, name)


def open_run(run_dir: Path) -> Experiment:
    """The run, opened for reading. A request a dead process left half done is not finished here
    (that is long work): pages offer a button that finishes it as a job."""
    return Experiment.open(run_dir, finish_pending=False)


def current_job(run_dir: Path | None, kinds: tuple[str, ...] | None = None) -> Job | None:
    """The job to show for this run: the one running on it, of any kind and whichever session
    started it (the registry is process-wide), else the finished one named in this viewer's URL
    when it is of one of `kinds` (the kinds whose results the page draws; None: any).

    A running job wins over the URL's: a second viewer, or a link naming an older job, must see
    the run's live job, as the buttons it disables already do. It is then put in this viewer's
    URL, so a reload finds it too."""
    if run_dir is None:
        return None
    jobs = registry()
    running = jobs.running(run_dir)
    if running is not None:
        if _param(QUERY_JOB) != running.job_id:
            show_job(running)
        return running
    job = jobs.get(_param(QUERY_JOB))
    if job is not None and job.run_dir == str(run_dir.resolve()) and (kinds is None or job.kind in kinds):
        return job
    return None


def request_job(run_dir: Path, request_id: int | None) -> Job | None:
    """The forget job of this server that served request `request_id`, once it has succeeded (None when
    another process, or this server before a restart, served it): the Forget page keeps its grid on screen
    while a verification of the request runs and after."""
    job = registry().latest(run_dir, kind="forget")
    snap = None if job is None else job.snapshot()
    if snap is None or snap.status != SUCCEEDED:
        return None
    served = snap.result if isinstance(snap.result, list) else [snap.result]  # finish_pending: several
    return job if request_id in served else None


def show_job(job: Job) -> None:
    _set_param(QUERY_JOB, job.job_id)


# -- where jobs run ------------------------------------------------------------------------------
def execution() -> tuple[str, str | None]:
    """(executor name, Ray address or None) this session chose on Setup; ("auto", None) before: each
    run's own path (execution.choose), so a run trained in lanes is served in lanes."""
    return st.session_state.get(EXECUTION) or ("auto", None)


def job_executor():
    """A fresh executor of the session's choice for one job (None: each run's own); Ray is imported only
    when chosen, and its cluster joined (or started) by the job (use_executor), not by the page."""
    name, address = execution()
    return execution_choice.make_executor(name, ray_address=address,
                                          lanes=lanes() if name in ("lanes", "ray") else None)


def lanes() -> int | None:
    """Lanes per group this session chose on Setup; None: chosen for the device (lanes.auto_lanes)."""
    return st.session_state.get(LANES_CHOICE) or None


def device_text() -> str | None:
    """The GPU jobs would use, with its memory, for the sidebar; None without one (never loads CUDA
    itself when torch has not: torch.cuda.is_available only reads the driver)."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    return f"GPU: {torch.cuda.get_device_name()} · {free / 2**30:.0f} of {total / 2**30:.0f} GiB free"


def job_choices(executor):
    """recipes.Choices for a job on `executor` (None: the run's own path, execution.choose), its
    cluster joined on the process-lifetime thread (jobs.connect)."""
    return recipes.Choices(executor, connect=connect)


def ray_connected() -> bool:
    """True when this process has joined a Ray cluster (a job did); never imports Ray itself."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def cluster() -> dict | None:
    """RayExecutor.describe() of the cluster this session's jobs use; None when they run locally or
    before a job has started Ray (describing would start it from the page)."""
    name, address = execution()
    if name != "ray" or not ray_connected():
        return None
    return execution_choice.make_executor(name, ray_address=address, lanes=lanes()).describe()


def setup_config() -> PurgeConfig:
    """The layout last chosen on the Setup page (defaults before any)."""
    return st.session_state.get(SETUP_CONFIG) or PurgeConfig()
