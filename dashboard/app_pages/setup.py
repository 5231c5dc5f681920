"""Setup: pick a dataset and a shard layout; see the plan it makes, what training it will cost and
store, real samples placed in it; train it as a run, watching every constituent's steps."""

import streamlit as st

from dashboard import components, share, state, views
from dashboard.fields import choice_kwargs, number_kwargs, widget_help
from purge_engine.config import AUTO_MODEL, PRESETS, PurgeConfig, field_label
from purge_engine.data import DatasetUnavailable
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS, epoch_warnings, job_sample_steps, make_plan, training_cost
from purge_engine.reproduce import reproduce_command, reproduce_snippet
from purge_engine.specs import DATASETS, MODELS, model_fits
from purge_engine.storage import storage_estimate
from purge_engine.vocabulary import title

DEFAULTS = PurgeConfig()
AUTO_NAME = "auto_run_name"  # the run name the layout suggested last
LINK_READ = "layout_link_read"  # the session has applied the layout its link carried
PRESET, APPLY_PRESET = "preset", "apply_preset"  # defaults live only in PurgeConfig
GRID_COLUMNS = 6  # wide enough for a caption on one line
# Keep the pixels square when the browser fits an image to its column.
PIXELATED = "<style>.st-key-sample_grid img { image-rendering: pixelated; }</style>"
NUMBERS = st.column_config.NumberColumn(format="localized")
# The layout's integer fields, drawn in two columns (left, right, left, ...); label, help and range from PurgeConfig.
NUMBER_FIELDS = (state.N_TEACHERS, state.N_STUDENTS, state.TEACHER_SLICES, state.STUDENT_SLICES, state.EPOCHS,
                 state.SEED)


def layout_from_link() -> list[str]:
    """On a session's first run, the layout a shared link carries fills the widgets; returns the
    messages for values the link got wrong (those fields keep their defaults)."""
    if st.session_state.get(LINK_READ):
        return []
    st.session_state[LINK_READ] = True
    values, errors = share.layout_from_query(st.query_params.to_dict())
    st.session_state.update(values)
    return errors


def apply_preset() -> None:
    """Every layout widget to the chosen preset (fields it does not name: PurgeConfig defaults)."""
    config = PurgeConfig(**PRESETS[st.session_state[PRESET]])
    st.session_state.update({key: getattr(config, key) for key in share.LAYOUT_FIELDS})


def keep_layout() -> None:
    """Streamlit forgets a widget's value on a page that does not draw it; writing each value back
    keeps the layout when the user returns from another page. Defaults come from PurgeConfig and
    are set here, once, so no widget is given both a value and a session-state entry."""
    for key in (*state.LAYOUT_KEYS, state.TEACHER_MODEL, state.STUDENT_MODEL):
        st.session_state[key] = st.session_state.get(key, getattr(DEFAULTS, key))


def model_choice(bar, key: str, dataset: str) -> str:
    options = [AUTO_MODEL, *(m for m in MODELS if model_fits(m, DATASETS[dataset]))]
    if st.session_state.get(key) not in options:  # another dataset was picked
        st.session_state[key] = AUTO_MODEL
    default = getattr(DATASETS[dataset], key)
    return bar.selectbox(field_label(key), options, key=key,
                         help=widget_help(key, f"For this dataset auto = {default} ({MODELS[default].title})."),
                         format_func=lambda m: f"auto ({default})" if m == AUTO_MODEL else f"{m}: {MODELS[m].title}")


def layout_numbers(bar) -> dict:
    """The layout's counts, two columns of number inputs whose label, help and range come from PurgeConfig."""
    columns = bar.columns(2)
    return {key: columns[i % 2].number_input(**number_kwargs(key), key=key) for i, key in enumerate(NUMBER_FIELDS)}


def layout_controls() -> PurgeConfig:
    """Sidebar widgets, keyed by the PurgeConfig field each sets; the config is not yet validated."""
    for message in layout_from_link():
        st.warning(f"The link's layout: {message}. That field keeps its default.", icon=":material/link_off:")
    keep_layout()
    bar = st.sidebar
    bar.header("Dataset and layout")
    left, right = bar.columns([3, 1], vertical_alignment="bottom")
    left.selectbox("Preset", list(PRESETS), key=PRESET, help="Named layouts: pick one and press Apply.")
    right.button("Apply", key=APPLY_PRESET, on_click=apply_preset)
    values = {state.DATASET: bar.selectbox(**choice_kwargs(state.DATASET), key=state.DATASET,
                                           format_func=lambda n: DATASETS[n].title)}
    values.update(layout_numbers(bar))
    fraction = bar.slider(**number_kwargs(state.STUDENT_FRACTION), key=state.STUDENT_FRACTION)
    values[state.STUDENT_FRACTION] = round(fraction, 2)  # the browser's 0.15000000000000002 -> 0.15
    values[state.STUDENT_DATA] = bar.radio(**choice_kwargs(state.STUDENT_DATA), horizontal=True,
                                           key=state.STUDENT_DATA)
    values[state.TEACHER_MODEL] = model_choice(bar, state.TEACHER_MODEL, values[state.DATASET])
    values[state.STUDENT_MODEL] = model_choice(bar, state.STUDENT_MODEL, values[state.DATASET])
    return PurgeConfig(**values)


def keep_execution() -> None:
    """The widgets' choice into state.EXECUTION (also their on_change: before the rerun draws the sidebar)."""
    name, address = st.session_state[state.EXECUTOR], st.session_state[state.RAY_ADDRESS].strip()
    st.session_state[state.EXECUTION] = (name, (address or None) if name == "ray" else None)


def execution_controls() -> None:
    """Where the jobs of this session run (Setup's training, Forget's requests and verifications):
    not part of the run's identity, so kept in the session (state.EXECUTION), not in the config."""
    executor, address = state.execution()
    st.session_state[state.EXECUTOR] = st.session_state.get(state.EXECUTOR, executor)  # survives other pages
    st.session_state[state.RAY_ADDRESS] = st.session_state.get(state.RAY_ADDRESS, address or "")
    bar = st.sidebar
    bar.header("Execution")
    name = bar.radio("Train constituents", list(state.EXECUTOR_TITLES), key=state.EXECUTOR,
                     format_func=state.EXECUTOR_TITLES.get, on_change=keep_execution,
                     help="In this process: one chain after another. Ray: one task per constituent chain, side by "
                          "side on every core of this machine or on a cluster; the same bits either way.")
    bar.text_input("Ray address", key=state.RAY_ADDRESS, disabled=name != "ray", on_change=keep_execution,
                   placeholder="empty: a local cluster; or auto, host:6379",
                   help="An existing Ray cluster to join (`ray start --head` prints it). Empty: start a local "
                        "one with every core. The run directory must be on storage every node sees.")
    keep_execution()


def dataset_or_none(config: PurgeConfig):
    try:
        return state.load_bundle(config.dataset, config.data_root)
    except DatasetUnavailable as err:
        st.info(f"{err}\n\nThe plan below is computed for its {DATASETS[config.dataset].n_train:,} training "
                "images; the sample gallery needs the files.", icon=":material/download:")
        return None


def sample_grid(bundle, plan) -> None:
    """One page of the train pool, each image captioned with where it sits in the plan."""
    st.subheader("Samples")
    pages = views.n_pages(bundle.n_train)
    if st.session_state.get(state.GALLERY_PAGE, 1) > pages:  # a smaller dataset was picked
        st.session_state[state.GALLERY_PAGE] = pages
    st.caption("Under each image: #sample id · label · T3/s2 = Teacher 3, slice 2 · S1/c2/s1 = Student 1, "
               "chunk 2, slice 1 (T – / S –: used by no teacher / no student).")
    page = st.columns([1, 5])[0].number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                                              key=state.GALLERY_PAGE)
    ids = views.page_ids(bundle.n_train, page)
    images = views.upscale(bundle.images(ids))
    captions = views.sample_grid_frame(bundle, plan, ids)["caption"].tolist()
    st.html(PIXELATED)
    with st.container(key=state.SAMPLE_GRID):
        for start in range(0, len(ids), GRID_COLUMNS):
            row = range(start, min(start + GRID_COLUMNS, len(ids)))
            for column, i in zip(st.columns(GRID_COLUMNS)[: len(row)], row, strict=True):
                column.image(images[i], caption=captions[i], width="stretch", output_format="PNG")


def default_run_name(config: PurgeConfig) -> str:
    return (f"{config.dataset}-t{config.n_teachers}-s{config.n_students}-r{config.teacher_slices}x"
            f"{config.student_slices}-e{config.epochs}-seed{config.seed}")


def follow_layout(name: str) -> None:
    """The run name follows the layout until the user types one of their own."""
    auto = st.session_state.get(AUTO_NAME)
    if st.session_state.get(state.RUN_NAME) in (None, auto):
        st.session_state[state.RUN_NAME] = name
    st.session_state[AUTO_NAME] = name


def train_section(config: PurgeConfig, plan) -> None:
    """Train the layout as a run directory under runs/, watching each constituent's steps."""
    st.subheader("Train")
    follow_layout(default_run_name(config))
    name = st.text_input("Run name", key=state.RUN_NAME,
                         help=f"A directory under `{state.runs_dir()}`. Training an existing run with the same "
                              "layout resumes it; its checkpoints are reused.").strip()
    run_dir = state.runs_dir() / name if name else None
    reason = components.busy_reason(run_dir) if run_dir else "Disabled: give the run a name."
    if st.button("Train teachers and all three student methods", key=state.TRAIN, type="primary",
                 disabled=reason is not None, help=reason, icon=":material/play_arrow:"):
        start_training(config, run_dir)
    if reason and run_dir is not None:
        st.caption(reason)
    with st.expander("Reproduce this layout from the command line or Python"):
        where = f"{state.runs_dir()}/{name or 'my-run'}"
        st.code(reproduce_command(config, where), language="bash")
        st.code(reproduce_snippet(config, where), language="python")
    # The job of the run the Train button is about (running: whoever started it), else the current run's.
    shown = run_dir if run_dir is not None and state.registry().running(run_dir) else state.current_run_dir()
    job = state.current_job(shown, kinds=("train",))
    if job is not None:
        components.job_view(job, views.grid_shape(state.open_run(shown).plan, ["teacher", *METHODS]),
                            draw_accuracy if job.kind == "train" else None)


def start_training(config: PurgeConfig, run_dir) -> None:
    try:
        exp = Experiment.create(config, run_dir)
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
        return
    state.select_run(run_dir.name)
    total = job_sample_steps(exp.plan, METHODS)
    executor = state.job_executor()

    def work(on_event, should_stop):
        state.use_executor(exp, executor).train(on_event=on_event, should_stop=should_stop)
        return exp.evaluate()

    if components.start_job(run_dir, "train", f"Training {run_dir.name}", work, total, count_reused=True):
        st.rerun()  # draw the sidebar and the live view with the new run and job


def draw_accuracy(snap) -> None:
    accuracy = snap.result["accuracy"]
    st.success("Trained. Go to **Forget** to remove samples, or **Mapping** to see who feeds whom.",
               icon=":material/check_circle:")
    for column, (role, value) in zip(st.columns(len(accuracy)), accuracy.items(), strict=True):
        column.metric(f"{title(role)}: test accuracy", views.percent_text(value))


st.title("PURGE Explorer: Setup")
st.markdown(
    "**SISA** trains an ensemble of *teachers*, each on its own shard of the data, slice by slice, so "
    "forgetting a sample retrains one teacher from the slice that held it. **PURGE** distils the teachers "
    "into *students*: each student learns from a small group of teachers, one chunk per teacher, so a "
    "changed teacher retrains only the student it feeds, from the first chunk that teacher labels. "
    "Pick a dataset and a layout in the sidebar; everything below is the plan they make.")
config = layout_controls()
execution_controls()
try:
    config.validate()
except ValueError as err:
    st.error(str(err), icon=":material/error:")
    st.caption("Change it in the sidebar: the ⓘ beside each control names the config field it sets.")
    st.stop()
st.session_state[state.SETUP_CONFIG] = config
st.query_params.update(share.layout_to_query(config))  # the address bar now reproduces this layout
bundle = dataset_or_none(config)
plan = make_plan(config, bundle if bundle is not None else DATASETS[config.dataset].n_train)
describe = plan.describe()

metrics = views.layout_metrics(describe)
for column, (label, value) in zip(st.columns(len(metrics)), metrics.items(), strict=True):
    column.metric(label, f"{value:,}" if isinstance(value, int) else value)

st.subheader("Mapping")
st.caption("Each student distils a contiguous group of teachers: chunk 1 is labelled by the first teacher, "
           "chunk 2 by the mean of the first two, and so on.")
st.table(views.mapping_table(describe).style.format({"Samples": "{:,}"}), hide_index=True)
st.subheader("Teachers")
st.dataframe(views.teacher_table(describe), hide_index=True, column_config={"Samples": NUMBERS})
st.subheader("Students")
st.caption("A student trains chunk by chunk, slice by slice; each step trains on everything it has seen so far.")
st.dataframe(views.student_table(describe), hide_index=True)

for warning in epoch_warnings(config):  # the epoch floor can break the budget: say so, with the numbers
    st.warning(warning, icon=":material/schedule:")
st.caption("Passes over shard = the work each constituent's steps add up to, in passes over its whole shard "
           "(step m sees m of its slices); SISA's rule keeps it at the epoch budget unless steps outnumber it.")

st.subheader("Predicted cost of training from scratch")
st.dataframe(views.cost_table(training_cost(plan)), hide_index=True,
             column_config={"Sample-steps": NUMBERS, "Label forward passes": NUMBERS})
st.caption("Sample-steps = samples × epochs trained; label forward passes = samples × teachers asked for a "
           "soft label. Teacher training is the same for every student method. Full retrain = every teacher "
           "and every PURGE student from scratch: what forgetting costs without unlearning.")

storage = storage_estimate(config, plan)
st.caption(f"Checkpoint storage when fully trained: **{views.human_bytes(storage['total_bytes'])}** "
           f"({storage['checkpoints']:,} checkpoints: teachers {views.human_bytes(storage['teacher_checkpoints'])}, "
           f"students of the three methods {views.human_bytes(storage['student_checkpoints'])}; cached soft labels "
           f"{views.human_bytes(storage['soft_labels'])}). Every slice step keeps its checkpoint, so a forget "
           "request restarts from the one before the first affected step.")

if bundle is not None:
    train_section(config, plan)
    sample_grid(bundle, plan)
