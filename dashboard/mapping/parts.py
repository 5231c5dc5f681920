"""What the Mapping page draws: the clickable influence graph with its teacher picker. Drawn with st.*; the
page hands over the plan (the current run's, else the Setup layout's).
"""

from __future__ import annotations

import streamlit as st

from dashboard.mapping import figures as mapping_figures
from dashboard.shared import figures
from purge_engine import scope_for_changes

TEACHER = "mapping_teacher"  # selectbox: the teacher whose influence is highlighted (None: no highlight)
GRAPH = "mapping_graph"  # the clickable node-link chart
SANKEY = "mapping_sankey"
SHARDS = "mapping_shards"  # toggle: draw the teacher-shard layer
SEEN_CLICK = "mapping_graph_seen"  # the chart selection last read, so each click is applied once


def apply_click() -> None:
    """A click on a teacher (or its shard) in the graph selects that teacher in the selectbox, once."""
    node = mapping_figures.clicked_node(st.session_state.get(GRAPH))
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
        st.markdown(mapping_figures.teacher_influence_text(describe, affected, teacher,
                                                           mapping_figures.shared_with_students(plan, teacher)))
    st.plotly_chart(figures.mapping_graph(describe, affected, shards=shards), key=GRAPH, on_select="rerun",
                    selection_mode="points", config={"displayModeBar": False})
