"""Setup: pick a dataset and a shard layout; see the plan it makes, what training it will cost and
store, real samples placed in it; train it as a run, watching every constituent's steps."""

import streamlit as st

from dashboard.setup import parts, share
from dashboard.setup import views as setup_views
from dashboard.shared import components, fields, grid, state
from purge_engine import (
    DATASETS,
    METHODS,
    Experiment,
    PurgeConfig,
    epoch_warnings,
    make_plan,
    recipes,
    reproduce_command,
    reproduce_snippet,
    storage_estimate,
    training_cost,
)

AUTO_NAME = "auto_run_name"  # the run name the layout suggested last


def follow_layout(name: str) -> None:
    """The run name follows the layout until the user types one of their own."""
    auto = st.session_state.get(AUTO_NAME)
    if st.session_state.get(state.RUN_NAME) in (None, auto):
        st.session_state[state.RUN_NAME] = name
    st.session_state[AUTO_NAME] = name


def train_section(config: PurgeConfig) -> None:
    """Train the layout as a run directory under runs/, watching each constituent's steps."""
    st.subheader("Train")
    follow_layout(setup_views.default_run_name(config))
    name = st.text_input("Run name", key=state.RUN_NAME,
                         help=f"A directory under `{state.runs_dir()}`. Training an existing run with the same "
                              "layout resumes it; its checkpoints are reused.").strip()
    run_dir, reason = None, "Disabled: give the run a name."
    if name:
        try:
            run_dir = state.run_dir_for(name)  # a name, strictly under the runs directory
            reason = components.busy_reason(run_dir)
        except ValueError as err:
            reason = f"Disabled: {err}."
            st.error(str(err), icon=":material/error:")
    if st.button("Train teachers and all three student methods", key=state.TRAIN, type="primary",
                 disabled=reason is not None, help=reason, icon=":material/play_arrow:") and reason is None:
        start_training(config, run_dir)
    if reason and run_dir is not None:
        st.caption(reason)
    with st.expander("Reproduce this layout from the command line or Python"):
        where = f"{state.runs_dir()}/{name if run_dir is not None else 'my-run'}"
        st.code(reproduce_command(config, where), language="bash")
        st.code(reproduce_snippet(config, where), language="python")
    # The job of the run the Train button is about (running: whoever started it), else the current run's.
    shown = run_dir if run_dir is not None and state.registry().running(run_dir) else state.current_run_dir()
    job = state.current_job(shown, kinds=("train",))
    if job is not None:
        components.job_view(job, grid.grid_shape(state.open_run(shown).plan, ["teacher", *METHODS]),
                            parts.draw_accuracy if job.kind == "train" else None)


def start_training(config: PurgeConfig, run_dir) -> None:
    try:
        exp = Experiment.create(config, run_dir)
    except ValueError as err:
        st.error(str(err), icon=":material/error:")
        return
    state.select_run(run_dir.name)
    executor = state.job_executor()

    def work(on_event, should_stop):  # announces its total first: the whole plan, reused steps counted
        return recipes.train(exp.store.root, exp.config, METHODS, choices=state.job_choices(executor),
                             on_event=on_event, should_stop=should_stop)

    if components.start_job(run_dir, "train", f"Training {run_dir.name}", work):
        st.rerun()  # draw the sidebar and the live view with the new run and job


st.title("PURGE Explorer: Setup")
if not state.run_names() and parts.start_here(state.predicted_training_seconds(PurgeConfig().to_json())):
    start_training(PurgeConfig(), state.run_dir_for(parts.DEMO_RUN))
st.markdown(
    "**SISA** trains an ensemble of *teachers*, each on its own shard of the data, slice by slice, so "
    "forgetting a sample retrains one teacher from the slice that held it. **PURGE** distils the teachers "
    "into *students*: each student learns from a small group of teachers, one chunk per teacher, so a "
    "changed teacher retrains only the student it feeds, from the first chunk that teacher labels. "
    "Pick a dataset and a layout in the sidebar; everything below is the plan they make.")
config = parts.layout_controls()
parts.execution_controls()
try:
    config.validate()
except ValueError as err:
    st.error(fields.on_screen(str(err)), icon=":material/error:")
    st.caption("Change it in the sidebar: the help (?) beside each control names the config field it sets.")
    st.stop()
st.session_state[state.SETUP_CONFIG] = config
st.query_params.update(share.layout_to_query(config))  # the address bar now reproduces this layout
bundle = parts.dataset_or_none(config)
plan = make_plan(config, bundle if bundle is not None else DATASETS[config.dataset].n_train)
parts.plan_view(plan.describe(), epoch_warnings(config), training_cost(plan), storage_estimate(config, plan))

if bundle is not None:
    train_section(config)
    st.subheader("Samples")
    components.sample_gallery(bundle, plan, state.GALLERY_PAGE, "Page")
