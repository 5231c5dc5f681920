"""Mapping: data shards -> teachers -> students -> chunks -> slices, and what one teacher influences."""

import streamlit as st

from dashboard import figures, state
from purge_engine.data import DatasetUnavailable
from purge_engine.plan import make_plan, scope_for_changes
from purge_engine.sources import DATASETS

TEACHER = "mapping_teacher"  # selectbox: the teacher whose influence is highlighted (None: no highlight)
GRAPH = "mapping_graph"  # the clickable node-link chart
SANKEY = "mapping_sankey"
SHARDS = "mapping_shards"  # toggle: draw the teacher-shard layer
SEEN_CLICK = "mapping_graph_seen"  # the chart selection last read, so each click is applied once


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


def apply_click() -> None:
    """A click on a teacher (or its shard) in the graph selects that teacher in the selectbox, once."""
    node = figures.clicked_node(st.session_state.get(GRAPH))
    seen = st.session_state.get(SEEN_CLICK)
    st.session_state[SEEN_CLICK] = node
    if node is not None and node != seen and node[0] in ("teacher", "shard"):
        st.session_state[TEACHER] = node[1]


def teacher_picker(n_teachers: int) -> int | None:
    options = [None, *range(n_teachers)]
    if st.session_state.get(TEACHER) not in options:  # another run with fewer teachers
        st.session_state[TEACHER] = None
    return st.selectbox("Teacher to follow", options, key=TEACHER,
                        format_func=lambda t: "— none —" if t is None else f"Teacher {t + 1}",
                        help="Or click a teacher in the graph: it and everything it influences stay in colour.")


def influence_view(plan, describe: dict) -> None:
    """The clickable graph, with the chosen teacher's blast radius highlighted and put in words."""
    apply_click()
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    with left:
        teacher = teacher_picker(plan.n_teachers)
    shards = right.toggle("Show teacher shards", value=True, key=SHARDS)
    affected = None if teacher is None else scope_for_changes(plan, {teacher: 0}, {}).to_dict()
    if affected is None:
        st.caption("Pick a teacher above, or click one in the graph, to see what forgetting one of its samples "
                   "retrains.")
    else:
        st.markdown(figures.teacher_influence_text(describe, affected, teacher,
                                                   figures.shared_with_students(plan, teacher)))
    st.plotly_chart(figures.mapping_graph(describe, affected, shards=shards), key=GRAPH, on_select="rerun",
                    selection_mode="points", config={"displayModeBar": False})


st.title("Mapping")
st.markdown("Each **teacher** trains on its own shard. Each **student** distils a contiguous group of teachers, "
            "one **chunk** per teacher: chunk *l* is labelled by the mean softmax of the first *l* teachers of "
            "the group, and each chunk is cut into **slices**, one training step each.")
plan, bundle, note = current_plan()
st.caption(note)
describe = plan.describe()

graph_tab, sankey_tab = st.tabs(["Influence graph", "Sankey overview"])
with graph_tab:
    influence_view(plan, describe)
with sankey_tab:
    st.caption("Band widths are samples: a teacher's shard on the left; into a student, the samples of the chunk "
               "where that teacher's labels start (they stay in every later chunk).")
    st.plotly_chart(figures.mapping_sankey(describe, shards=st.session_state.get(SHARDS, True)), key=SANKEY)

st.subheader("Label composition per chunk")
st.caption("Whose softmax is averaged into each chunk's soft labels, per student method. PURGE adds one teacher "
           "per chunk; the single-teacher ablation uses one; the baseline asks the whole ensemble.")
st.dataframe(figures.label_composition_table(plan), hide_index=True)

st.subheader("Class mix per shard")
if bundle is None:
    st.caption("The class mix needs the dataset files (see the Setup page).")
else:
    st.caption("Samples of each class in every teacher shard and every student chunk.")
    st.plotly_chart(figures.class_mix_figure(figures.class_mix_frame(plan, bundle.train_y, bundle.class_names)),
                    key="mapping_class_mix")
