"""The Mapping page through AppTest: the teacher picker, a chart click injected through session state."""

from tests.dashboard.conftest import app_on

TEACHER, GRAPH = "mapping_teacher", "mapping_graph"
INFLUENCE = "Forgetting a sample of"


def influence(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith(INFLUENCE)]


def click(teacher_id: int) -> dict:
    """What st.plotly_chart's selection holds after a click on a teacher node."""
    return {"selection": {"points": [{"curve_number": 3, "point_index": teacher_id, "point_number": teacher_id,
                                      "customdata": ["teacher", teacher_id, -1, -1]}],
                          "point_indices": [teacher_id], "box": [], "lasso": []}}


def test_page_draws_the_run_plan(runs_dir):
    at = app_on("mapping")
    assert not at.exception
    assert at.selectbox(key=TEACHER).value is None
    assert at.selectbox(key=TEACHER).options == ["— none —", "Teacher 1", "Teacher 2", "Teacher 3", "Teacher 4"]
    assert len(at.get("plotly_chart")) == 3  # graph, Sankey, class mix
    assert any("Run **tiny**" in c.value and "2 forgotten samples" in c.value for c in at.caption)
    assert not influence(at)
    chunks = next(df.value for df in at.dataframe if "PURGE student" in df.value.columns)
    assert len(chunks) == 4  # one chunk per teacher


def test_picking_a_teacher_changes_the_highlighted_text(runs_dir):
    at = app_on("mapping")
    at.selectbox(key=TEACHER).set_value(1).run()  # Teacher 2: second of Student 1's two teachers
    assert not at.exception
    (text,) = influence(at)
    assert "**Teacher 2**" in text and "**Student 1 from chunk 2**" in text
    at.selectbox(key=TEACHER).set_value(2).run()  # Teacher 3: first of Student 2's
    (other,) = influence(at)
    assert "**Teacher 3**" in other and "**Student 2 from chunk 1**" in other and other != text


def test_a_click_on_a_teacher_node_selects_it(runs_dir):
    at = app_on("mapping")
    at.session_state[GRAPH] = click(3)
    at.run()
    assert not at.exception
    assert at.selectbox(key=TEACHER).value == 3
    assert "**Teacher 4**" in influence(at)[0]
    # the selectbox still works while the chart keeps that selection: a click is applied once
    at.selectbox(key=TEACHER).set_value(0).run()
    assert at.selectbox(key=TEACHER).value == 0
    assert "**Teacher 1**" in influence(at)[0]


def test_the_highlighted_graph_changes_with_the_teacher(runs_dir):
    at = app_on("mapping")
    before = at.get("plotly_chart")[0].proto.spec
    at.selectbox(key=TEACHER).set_value(0).run()
    assert at.get("plotly_chart")[0].proto.spec != before


def test_without_a_run_the_setup_layout_is_shown(empty_runs_dir):
    at = app_on("mapping", run=None)
    assert not at.exception
    assert any("Setup" in c.value and "not yet trained" in c.value for c in at.caption)
    assert len(at.selectbox(key=TEACHER).options) == 1 + 8  # PurgeConfig's default teachers
    at.selectbox(key=TEACHER).set_value(7).run()
    assert "**Teacher 8**" in influence(at)[0]
