"""Mapping: data shards -> teachers -> students -> chunks -> slices, and what one teacher influences."""

import streamlit as st

from dashboard.mapping import figures, parts
from dashboard.shared import state, views
from purge_engine import DATASETS, DatasetUnavailable, make_plan


def current_plan():
    """(plan, bundle or None, caption): the current run's plan, else the Setup page's layout."""
    run_dir = state.current_run_dir()
    if run_dir is not None:
        try:
            exp = state.open_run(run_dir)
        except ValueError as err:
            st.error(str(err), icon=":material/error:")
            st.stop()
        forgotten = len(exp.plan.forgotten)
        return exp.plan, exp.bundle, (f"Run **{run_dir.name}**, as it stands now" + (
            f": {forgotten:,} forgotten samples have left their shards, so sizes reflect the removals."
            if forgotten else "."))
    config = state.setup_config()
    try:
        bundle = state.load_bundle(config.dataset, config.data_root)
    except DatasetUnavailable:
        bundle = None
    plan = make_plan(config, bundle if bundle is not None else DATASETS[config.dataset].n_train)
    return plan, bundle, ("No run selected: this is the layout chosen on the **Setup** page, not yet trained. "
                          "Pick a run in the sidebar to see its plan.")


st.title("Mapping")
st.markdown("Each **teacher** trains on its own shard. Each **student** distils a contiguous group of teachers, "
            "one **chunk** per teacher: chunk *l* is labelled by the mean softmax of the first *l* teachers of "
            "the group, and each chunk is cut into **slices**, one training step each.")
plan, bundle, note = current_plan()
st.caption(note)
describe = plan.describe()

graph_tab, sankey_tab = st.tabs(["Influence graph", "Sankey overview"])
with graph_tab:
    parts.influence_view(plan, describe)
with sankey_tab:
    st.caption("Band widths are samples: a teacher's shard on the left; into a student, the samples of the chunk "
               "where that teacher's labels start (they stay in every later chunk).")
    st.plotly_chart(figures.mapping_sankey(describe, shards=st.session_state.get(parts.SHARDS, True)),
                    key=parts.SANKEY)

st.subheader("Label composition per chunk")
st.caption("Whose softmax is averaged into each chunk's soft labels, per student method. PURGE adds one teacher "
           "per chunk; the single-teacher ablation uses one; the baseline asks the whole ensemble.")
st.dataframe(views.label_composition_table(plan), hide_index=True)

st.subheader("Class mix per shard")
if bundle is None:
    st.caption("The class mix needs the dataset files (see the Setup page).")
else:
    st.caption("Samples of each class in every teacher shard and every student chunk.")
    st.plotly_chart(figures.class_mix_figure(figures.class_mix_frame(plan, bundle.train_y, bundle.class_names)),
                    key="mapping_class_mix")
