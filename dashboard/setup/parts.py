"""What the Setup page draws: the sidebar's layout and execution controls (they build a PurgeConfig and
the session's executor choice), the plan's tables, and a finished training's accuracy. Drawn with st.*;
the page calls the engine (plan, costs, training) and hands the results over.
"""

from __future__ import annotations

import streamlit as st

from dashboard.setup import share, upload_parts
from dashboard.setup import views as setup_views
from dashboard.shared import state, views
from dashboard.shared.components import NUMBERS
from dashboard.shared.cost import training_table
from dashboard.shared.fields import choice_kwargs, number_kwargs, widget_help
from purge_engine import (
    AUTO_LANES,
    AUTO_MODEL,
    DATASETS,
    LANE_LIMIT,
    MODELS,
    PRESETS,
    DatasetUnavailable,
    PurgeConfig,
    field_label,
    model_fits,
    title,
)

DEFAULTS = PurgeConfig()
LINK_READ = "layout_link_read"  # the session has applied the layout its link carried
PRESET, APPLY_PRESET = "preset", "apply_preset"  # defaults live only in PurgeConfig

# The layout's integer fields, drawn in two columns (left, right, left, ...); label, help and range from PurgeConfig.
NUMBER_FIELDS = (state.N_TEACHERS, state.N_STUDENTS, state.TEACHER_SLICES, state.STUDENT_SLICES, state.EPOCHS,
                 state.SEED)


SHARE_ADJUSTED = "student_share_adjusted"  # a one-shot note: switching to disjoint lowered the share


# -- the layout (sidebar) -------------------------------------------------------------------------
def share_below_one() -> None:
    """Choosing disjoint student data with the whole pool as the students' share: lower the share to
    the default (held-out data must leave the teachers some) instead of answering with an error."""
    if st.session_state.get(state.STUDENT_DATA) == "disjoint" and st.session_state.get(state.STUDENT_FRACTION, 0) >= 1:
        st.session_state[state.STUDENT_FRACTION] = DEFAULTS.student_fraction
        st.session_state[SHARE_ADJUSTED] = True


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
    # Full width, the button below: preset names are sentences and must not be cut off.
    bar.selectbox("Preset", list(PRESETS), key=PRESET, help="Named layouts: pick one and press Apply.")
    bar.button("Apply", key=APPLY_PRESET, on_click=apply_preset)
    values = {state.DATASET: bar.selectbox(**upload_parts.dataset_kwargs(), key=state.DATASET,
                                           format_func=lambda n: DATASETS[n].title)}
    upload_parts.upload_controls(bar)  # the user's own data, listed in the box above once imported
    values.update(layout_numbers(bar))
    fraction = bar.slider(**number_kwargs(state.STUDENT_FRACTION), key=state.STUDENT_FRACTION)
    values[state.STUDENT_FRACTION] = round(fraction, 2)  # the browser's 0.15000000000000002 -> 0.15
    values[state.STUDENT_DATA] = bar.radio(**choice_kwargs(state.STUDENT_DATA), horizontal=True,
                                           key=state.STUDENT_DATA, on_change=share_below_one)
    if st.session_state.pop(SHARE_ADJUSTED, False):
        bar.caption(f"Disjoint student data is held out from the teachers, so its share must be below 1: set to "
                    f"{DEFAULTS.student_fraction:.0%}.")
    values[state.TEACHER_MODEL] = model_choice(bar, state.TEACHER_MODEL, values[state.DATASET])
    values[state.STUDENT_MODEL] = model_choice(bar, state.STUDENT_MODEL, values[state.DATASET])
    return PurgeConfig(**values)


# -- where the session's jobs run (sidebar) ---------------------------------------------------------
def keep_execution() -> None:
    """The widgets' choice into state.EXECUTION (also their on_change: before the rerun draws the sidebar)."""
    name, address = st.session_state[state.EXECUTOR], st.session_state[state.RAY_ADDRESS].strip()
    st.session_state[state.EXECUTION] = (name, (address or None) if name == "ray" else None)
    st.session_state[state.LANES_CHOICE] = int(st.session_state.get(state.LANES) or 0)


def execution_controls() -> None:
    """Where the jobs of this session run (Setup's training, Forget's requests and verifications):
    not part of the run's identity, so kept in the session (state.EXECUTION), not in the config."""
    executor, address = state.execution()
    st.session_state[state.EXECUTOR] = st.session_state.get(state.EXECUTOR, executor)  # survives other pages
    st.session_state[state.RAY_ADDRESS] = st.session_state.get(state.RAY_ADDRESS, address or "")
    st.session_state[state.LANES] = st.session_state.get(state.LANES, state.lanes())  # None: auto
    bar = st.sidebar
    bar.header("Execution")
    name = bar.radio("Train constituents", list(state.EXECUTOR_TITLES), key=state.EXECUTOR,
                     format_func=state.EXECUTOR_TITLES.get, on_change=keep_execution,
                     help="In this process: one chain after another. Ray: one task per constituent chain, side by "
                          "side on every core of this machine or on a cluster; the same bits either way. Lanes: "
                          "W chains at once as lanes of one batched model (the GPU path; on a CPU faster to "
                          "train, slower to forget, than the loop); its own bits, so a run's requests and "
                          "verifications must use the same W. Automatic: a trained run's own path (lanes with its "
                          "W, or one chain after another); a new run gets lanes on a GPU, the loop on a CPU.")
    bar.text_input("Ray address", key=state.RAY_ADDRESS, disabled=name != "ray", on_change=keep_execution,
                   placeholder="empty: a local cluster; or auto, host:6379",
                   help="An existing Ray cluster to join (`ray start --head` prints it). Empty: start a local "
                        "one with every core. The run directory must be on storage every node sees.")
    auto = ("empty: one chain per task" if name == "ray"
            else f"auto: {AUTO_LANES['cpu']} on a CPU, {AUTO_LANES['cuda']} on a GPU")
    bar.number_input("Lanes (W)", min_value=1, max_value=LANE_LIMIT, step=1, key=state.LANES,
                     disabled=name in ("local", "auto"), on_change=keep_execution, placeholder=auto,
                     help=f"Chains trained at once as lanes of one batched model, 1 to {LANE_LIMIT}. Lanes: empty "
                          "is chosen for the device. Ray: each task trains a block of W chains as one lane group "
                          "(several groups share a GPU); empty is one chain per task. Part of the execution "
                          "path: keep it for a run's requests.")
    keep_execution()


# -- the plan --------------------------------------------------------------------------------------
def dataset_or_none(config: PurgeConfig):
    """The layout's dataset, or None with a note when its files are not on this machine."""
    try:
        return state.load_bundle(config.dataset, config.data_root)
    except DatasetUnavailable as err:
        st.info(f"{err}\n\nThe plan below is computed for its {DATASETS[config.dataset].n_train:,} training "
                "images; the sample gallery needs the files.", icon=":material/download:")
        return None


def plan_view(describe: dict, warnings: list[str], cost: dict, storage: dict) -> None:
    """The plan's headline numbers and tables (describe: plan.describe()), the epoch warnings, the
    predicted cost of training (training_cost) and the storage it will take (storage_estimate)."""
    metrics = setup_views.layout_metrics(describe)
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
    st.dataframe(setup_views.student_table(describe), hide_index=True)
    for warning in warnings:  # the epoch floor can break the budget: say so, with the numbers
        st.warning(warning, icon=":material/schedule:")
    st.caption("Passes over shard = the work each constituent's steps add up to, in passes over its whole shard "
               "(step m sees m of its slices); SISA's rule keeps it at the epoch budget unless steps outnumber it.")
    st.subheader("Predicted cost of training from scratch")
    st.dataframe(training_table(cost), hide_index=True,
                 column_config={"Sample-steps": NUMBERS, "Label forward passes": NUMBERS})
    st.caption("Sample-steps = samples × epochs trained; label forward passes = samples × teachers asked for a "
               "soft label. Teacher training is the same for every student method. Full retrain = every teacher "
               "and every PURGE student from scratch: what forgetting costs without unlearning.")
    st.caption(setup_views.storage_text(storage))


def draw_accuracy(snap) -> None:
    """A finished training job's result: test accuracy of each ensemble."""
    accuracy = snap.result["accuracy"]
    st.success("Trained. Go to **Forget** to remove samples, or **Mapping** to see who feeds whom.",
               icon=":material/check_circle:")
    for column, (role, value) in zip(st.columns(len(accuracy)), accuracy.items(), strict=True):
        column.metric(f"{title(role)}: test accuracy", views.percent_text(value))


# -- the first minute ---------------------------------------------------------------------------------
START_HERE, TRAIN_DEMO = "start_here", "train_demo"
DEMO_RUN = "demo"


def start_here(seconds: float | None) -> bool:
    """The cold open: what the product shows, in one screen, and its one next action. True when the
    user asked to train the demo run (the defaults) under runs/demo."""
    with st.container(key=START_HERE, border=True):
        st.markdown(
            "### Start here\n"
            "Take data back from a trained model, and prove it is gone. This demo trains a real ensemble on "
            "real handwritten digits: 8 **teachers**, each on its own shard, distilled into 4 **students**. "
            "You then tick a few images to forget; the engine retrains only what they touched (**PURGE**), "
            "shows what the usual distillation baseline would have had to retrain, and proves the result is "
            "bit-for-bit what training without those images gives.")
        when = "" if seconds is None else f" (about {max(1, round(seconds))} s here)"
        clicked = st.button(f"Train the demo run{when}", key=TRAIN_DEMO, type="primary",
                            icon=":material/rocket_launch:")
        st.caption("Then open **Forget**, tick three images and press Forget. Or change the layout in the sidebar "
                   "first: everything below is the plan it makes.")
    return clicked
