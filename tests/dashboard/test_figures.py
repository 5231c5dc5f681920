"""Figure builders of the Mapping and Compare pages: pure, checked against the plan they draw."""

import json

import numpy as np
import pytest

from dashboard.compare import figures as compare_figures
from dashboard.forget import figures as forget_figures
from dashboard.mapping import figures as mapping_figures
from dashboard.shared import figures, views
from purge_engine.config import PurgeConfig
from purge_engine.plan import make_plan, retrain_scope, scope_for_changes
from purge_engine.vocabulary import teacher_names, title

# Uneven on purpose: 5 teachers over 2 students gives groups of 3 and 2; 3 student slices per chunk.
CONFIG = PurgeConfig(n_teachers=5, n_students=2, teacher_slices=2, student_slices=3, student_data="disjoint",
                     student_fraction=0.4)
N_POOL = 300


@pytest.fixture(scope="module")
def plan():
    return make_plan(CONFIG, N_POOL)


@pytest.fixture(scope="module")
def describe(plan):
    return plan.describe()


def node_traces(fig):
    """layer -> the go.Scatter of that layer's nodes."""
    return {trace.customdata[0][0]: trace for trace in fig.data if trace.customdata is not None}


def node_keys(trace) -> list[tuple]:
    return [(row[0], *(int(v) for v in row[1:] if int(v) >= 0)) for row in trace.customdata]


def lit_nodes(fig) -> set[tuple]:
    """Nodes drawn in colour (not dimmed)."""
    lit = set()
    for trace in node_traces(fig).values():
        lit |= {key for key, colour in zip(node_keys(trace), trace.marker.color, strict=True)
                if colour != figures.DIM_NODE}
    return lit


def all_nodes(plan, shards=True) -> set[tuple]:
    keys = {("teacher", t) for t in range(plan.n_teachers)} | {("student", k) for k in range(plan.n_students)}
    keys |= {("shard", t) for t in range(plan.n_teachers)} if shards else set()
    for k in range(plan.n_students):
        for c in range(plan.n_chunks(k)):
            keys.add(("chunk", k, c))
            keys |= {("slice", k, c, j) for j in range(plan.student_slices)}
    return keys


# -- the Sankey ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shards", [True, False])
def test_sankey_has_a_node_per_constituent_chunk_and_slice(plan, describe, shards):
    sankey = mapping_figures.mapping_sankey(describe, shards=shards).data[0]
    n_t, n_s, r = plan.n_teachers, plan.n_students, plan.student_slices
    n_chunks = sum(plan.n_chunks(k) for k in range(n_s))
    assert n_chunks == n_t  # one chunk per mapped teacher
    assert len(sankey.node.label) == (n_t if shards else 0) + n_t + n_s + n_chunks + n_chunks * r
    # shard -> teacher, teacher -> student, student -> chunk, chunk -> slice
    assert len(sankey.link.source) == (n_t if shards else 0) + n_t + n_chunks + n_chunks * r


def test_sankey_band_widths_are_the_plan_sizes(plan, describe):
    fig = mapping_figures.mapping_sankey(describe)
    nodes = figures.mapping_nodes(describe)
    link = fig.data[0].link
    flows = {(nodes[a].key, nodes[b].key): v for a, b, v in zip(link.source, link.target, link.value, strict=True)}
    for t in range(plan.n_teachers):
        assert flows[(("shard", t), ("teacher", t))] == plan.teacher_shard(t).size
    for k in range(plan.n_students):
        into = sum(v for (a, b), v in flows.items() if b == ("student", k))
        out = sum(v for (a, b), v in flows.items() if a == ("student", k))
        assert into == out == plan.student_shard(k).size  # flow is conserved through a student
        for c in range(plan.n_chunks(k)):
            slices = [flows[(("chunk", k, c), ("slice", k, c, j))] for j in range(plan.student_slices)]
            assert slices == [s.size for s in plan.student_shards[k][c]]


# -- the clickable graph -----------------------------------------------------------------------------
@pytest.mark.parametrize("shards", [True, False])
def test_graph_has_one_node_per_teacher_student_chunk_and_slice(plan, describe, shards):
    fig = figures.mapping_graph(describe, shards=shards)
    keys = [key for trace in node_traces(fig).values() for key in node_keys(trace)]
    assert len(keys) == len(set(keys))
    assert set(keys) == all_nodes(plan, shards)
    assert lit_nodes(fig) == all_nodes(plan, shards)  # nothing highlighted: everything in colour


def test_graph_is_deterministic_with_fixed_positions(describe):
    affected = {"teachers": {"1": 0}, "students": {"purge": {"0": 3}}, "label_slices": {}}
    first = figures.mapping_graph(describe, affected)
    assert first.to_json() == figures.mapping_graph(describe, affected).to_json()
    # highlighting changes colours only: every node keeps its place
    plain = figures.mapping_graph(describe)
    assert [t.x for t in node_traces(first).values()] == [t.x for t in node_traces(plain).values()]
    assert [t.y for t in node_traces(first).values()] == [t.y for t in node_traces(plain).values()]


@pytest.mark.parametrize("teacher", range(CONFIG.n_teachers))
def test_highlighting_a_teacher_marks_exactly_what_scope_for_changes_retrains(plan, describe, teacher):
    scope = scope_for_changes(plan, {teacher: 0}, {})
    lit = lit_nodes(figures.mapping_graph(describe, scope.to_dict()))
    r = plan.student_slices
    expected = {("teacher", teacher), ("shard", teacher)}
    for k, first in scope.students["purge"].items():
        expected.add(("student", k))
        expected |= {("chunk", k, c) for c in range(plan.n_chunks(k)) if (c + 1) * r > first}
        expected |= {("slice", k, c, j) for c in range(plan.n_chunks(k)) for j in range(r) if c * r + j >= first}
    assert lit == expected
    # and that is the paper's rule: the one student it feeds, from the chunk at its position in the group
    (k,) = [k for k, group in enumerate(plan.mapping) if teacher in group]
    position = plan.mapping[k].index(teacher)
    assert {key for key in lit if key[0] == "student"} == {("student", k)}
    assert {key for key in lit if key[0] == "chunk"} == {("chunk", k, c) for c in range(position, plan.n_chunks(k))}


def test_a_student_side_request_lights_its_student_from_the_slice_on_and_no_teacher(plan, describe):
    where = plan.locations()
    sample = next(i for i in range(N_POOL) if where["student"][i] >= 0 and where["chunk"][i] == 1
                  and where["student_slice"][i] == 1)
    k = int(where["student"][sample])
    lit = lit_nodes(figures.mapping_graph(describe, retrain_scope(plan, [sample]).to_dict()))
    first = plan.student_slices + 1  # chunk 1, slice 1
    assert {key for key in lit if key[0] in ("teacher", "shard")} == set()
    assert {key for key in lit if key[0] == "student"} == {("student", k)}
    assert {key for key in lit if key[0] == "slice"} == {
        ("slice", k, c, j) for c in range(plan.n_chunks(k)) for j in range(plan.student_slices)
        if c * plan.student_slices + j >= first}
    assert ("chunk", k, 0) not in lit and ("chunk", k, 1) in lit


def test_a_teacher_side_request_lights_the_teacher_and_its_students_chunks(plan, describe):
    where = plan.locations()
    sample = next(i for i in range(N_POOL) if where["teacher"][i] == 3)  # disjoint: a teacher-only sample
    lit = lit_nodes(figures.mapping_graph(describe, retrain_scope(plan, [sample]).to_dict()))
    # Teacher 4 (id 3) is the first teacher of Student 2: that student retrains from chunk 1, all of it
    assert {key for key in lit if key[0] in ("teacher", "shard", "student")} == {
        ("teacher", 3), ("shard", 3), ("student", 1)}
    assert {key for key in lit if key[0] == "chunk"} == {("chunk", 1, 0), ("chunk", 1, 1)}


def test_a_click_maps_back_to_the_node_through_customdata(describe):
    fig = figures.mapping_graph(describe)
    teachers = node_traces(fig)["teacher"]
    selection = {"selection": {"points": [{"curve_number": 0, "point_index": 2,
                                           "customdata": list(teachers.customdata[2])}]}}
    assert mapping_figures.clicked_node(selection) == ("teacher", 2)
    chunk = node_traces(fig)["chunk"].customdata[4]
    assert mapping_figures.clicked_node({"selection": {"points": [{"customdata": list(chunk)}]}})[0] == "chunk"
    assert mapping_figures.clicked_node({"selection": {"points": []}}) is None
    assert mapping_figures.clicked_node(None) is None


def test_influence_text_names_the_student_chunk_and_steps(plan, describe):
    affected = scope_for_changes(plan, {2: 0}, {}).to_dict()  # Teacher 3: third of Student 1's group
    text = mapping_figures.teacher_influence_text(describe, affected, 2)
    steps = plan.student_steps(0)
    assert "**Teacher 3**" in text
    assert f"**Student 1 from chunk 3** (steps {2 * plan.student_slices + 1}–{steps} of {steps})" in text
    assert "Student 2 keeps every checkpoint" in text
    assert "all 2 students from scratch" in text
    first = mapping_figures.teacher_influence_text(describe, scope_for_changes(plan, {0: 0}, {}).to_dict(), 0)
    assert "**Student 1 from chunk 1** (steps 1–" in first


def test_influence_text_stays_true_for_a_sample_that_also_sits_in_a_student():
    # Overlap: most of Teacher 3's samples also sit in some student's data; forgetting one of those
    # retrains that student too, so "Student 2 keeps every checkpoint" must say which samples it means.
    from purge_engine.config import PurgeConfig
    from purge_engine.plan import make_plan, retrain_scope

    plan = make_plan(PurgeConfig(n_teachers=6, n_students=2, student_data="overlap", student_fraction=1.0), 1437)
    shared = mapping_figures.shared_with_students(plan, 2)
    assert set(shared) == {0, 1} and sum(shared.values()) == plan.teacher_shard(2).size
    affected = scope_for_changes(plan, {2: 0}, {}).to_dict()
    text = mapping_figures.teacher_influence_text(plan.describe(), affected, 2, shared)
    assert "that sits only in its shard" in text and f"Student 2: {shared[1]:,}" in text
    sample = next(int(i) for i in plan.teacher_shard(2) if plan.locate(int(i))["student"] == 1)
    assert 1 in retrain_scope(plan, [sample]).students["purge"]  # what the sentence now warns about
    disjoint = make_plan(PurgeConfig(n_teachers=6, n_students=2), 1437)
    assert mapping_figures.shared_with_students(disjoint, 2) == {}


# -- label composition and class mix ----------------------------------------------------------------
def test_label_composition_has_a_row_per_chunk_with_the_incremental_teachers(plan):
    table = views.label_composition_table(plan)
    assert len(table) == sum(plan.n_chunks(k) for k in range(plan.n_students))
    student_1 = table[table["Student"] == "Student 1"]
    assert student_1["PURGE student"].tolist() == ["Teacher 1", "Teachers 1–2 (1/2 each)", "Teachers 1–3 (1/3 each)"]
    assert student_1["Single-teacher PURGE"].tolist() == ["Teacher 1", "Teacher 2", "Teacher 3"]
    assert set(table["Baseline student (SISA)"]) == {"Teachers 1–5 (1/5 each)"}
    assert table["Samples"].sum() == plan.all_student_samples().size


def test_the_graph_and_the_label_table_agree_once_a_teacher_shard_is_emptied(plan):
    emptied = plan.without(plan.teacher_shard(1))  # Teacher 2: second of Student 1's group
    table = views.label_composition_table(emptied).set_index(["Student", "Chunk"])
    chunks = {n.key: n for n in figures.mapping_nodes(emptied.describe()) if n.key[0] == "chunk"}
    for k in range(emptied.n_students):
        for c in range(emptied.n_chunks(k)):
            teachers = emptied.labelling_teachers("purge", k, c)  # the one source of who labels a chunk
            assert 1 not in teachers or k != 0
            node = chunks[("chunk", k, c)]
            assert table.loc[(f"Student {k + 1}", f"chunk {c + 1}"), "PURGE student"].startswith(
                teacher_names(teachers))
            assert f"labelled by {teacher_names(teachers)} " in node.hover
    assert table.loc[("Student 1", "chunk 2"), "PURGE student"] == "Teacher 1"
    assert table.loc[("Student 1", "chunk 2"), "Single-teacher PURGE"] == "uniform (no teacher left)"
    alone = make_plan(CONFIG.replace(n_teachers=2, n_students=2), N_POOL)
    alone = alone.without(alone.teacher_shard(0))  # Student 1's only teacher emptied: its chunk is uniform
    node = next(n for n in figures.mapping_nodes(alone.describe()) if n.key == ("chunk", 0, 0))
    assert node.text == "chunk 1 ← uniform" and "labelled uniformly" in node.hover


def test_class_mix_counts_sum_to_shard_and_chunk_sizes(plan):
    labels = np.arange(N_POOL) % 3
    frame = mapping_figures.class_mix_frame(plan, labels, ["a", "b", "c"])
    totals = frame.groupby("unit")["count"].sum()
    for t in range(plan.n_teachers):
        assert totals[f"Teacher {t + 1}"] == plan.teacher_shard(t).size
        ids = plan.teacher_shard(t)
        assert frame[(frame["unit"] == f"Teacher {t + 1}") & (frame["class"] == "b")]["count"].item() == \
            int((labels[ids] == 1).sum())
    for k in range(plan.n_students):
        for c in range(plan.n_chunks(k)):
            assert totals[f"S{k + 1} chunk {c + 1}"] == sum(s.size for s in plan.student_shards[k][c])
    fig = mapping_figures.class_mix_figure(frame)
    assert len(fig.data) == 2 * 3  # a bar trace per class in each panel
    assert sum(sum(trace.y) for trace in fig.data) == frame["count"].sum()


def test_class_mix_reflects_forgotten_samples(plan):
    labels = np.zeros(N_POOL, dtype=np.int64)
    gone = plan.teacher_shard(0)[:4].tolist()
    before = mapping_figures.class_mix_frame(plan, labels, ["only"]).set_index("unit")["count"]
    after = mapping_figures.class_mix_frame(plan.without(gone), labels, ["only"]).set_index("unit")["count"]
    assert after["Teacher 1"] == before["Teacher 1"] - 4
    assert after["Teacher 2"] == before["Teacher 2"]


# -- the Compare page's figures ----------------------------------------------------------------------
def test_cost_figure_draws_a_line_per_method_and_marks_estimates():
    import pandas as pd

    frame = pd.DataFrame({"request": [0, 1, 2] * 2, "method": ["purge"] * 3 + ["full_retrain"] * 3,
                          "unit": ["seconds"] * 6, "value": [0, 1, 2, 0, 5, 5], "cumulative": [0, 1, 3, 0, 5, 10],
                          "estimated": [False, False, False, False, True, False],
                          "cumulative_estimated": [False, False, False, False, True, True]})
    fig = compare_figures.cumulative_cost_figure(frame, "seconds")
    assert [t.name for t in fig.data] == ["PURGE students", "Full retrain"]  # the cost tables' row titles
    assert [t.line.color for t in fig.data] == [figures.ROLE_COLOURS["purge"], figures.ROLE_COLOURS["full_retrain"]]
    assert list(fig.data[1].y) == [0, 5, 10]
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.dash == "solid"
    assert list(fig.data[1].marker.symbol) == ["diamond", "diamond-open", "diamond"]  # full retrain's own marker
    assert json.loads(fig.to_json())  # serialisable as Streamlit sends it


def test_methods_that_cost_the_same_are_never_drawn_invisibly_under_one_another():
    import pandas as pd

    # A student-side request: PURGE and the baseline retrain exactly the same sample-steps.
    frame = pd.DataFrame({"request": [0, 1] * 2, "method": ["baseline"] * 2 + ["purge"] * 2,
                          "unit": ["sample_steps"] * 4, "value": [0, 9, 0, 9], "cumulative": [0, 9, 0, 9],
                          "estimated": [False] * 4, "cumulative_estimated": [False] * 4})
    baseline, purge = compare_figures.cumulative_cost_figure(frame, "sample_steps").data
    assert list(baseline.y) == list(purge.y)
    assert baseline.line.width > purge.line.width and baseline.marker.size > purge.marker.size  # a halo
    assert set(baseline.marker.symbol) != set(purge.marker.symbol)  # and another shape: not colour alone


def test_renaming_a_title_keeps_its_colour(monkeypatch):
    import pandas as pd

    from purge_engine import vocabulary

    monkeypatch.setitem(vocabulary.TITLES, "baseline", vocabulary.Titles("Renamed", "Renamed student", "Renamed"))
    frame = pd.DataFrame({"request": [0, 1], "role": ["baseline"] * 2, "test_accuracy": [0.9, 0.8]})
    trace = compare_figures.accuracy_figure(frame).data[0]
    assert trace.name == "Renamed student" and trace.line.color == figures.ROLE_COLOURS["baseline"]


# -- the Forget page's membership figure -----------------------------------------------------------
def membership_record(with_distribution: bool = True) -> dict:
    def check(losses, percentiles):
        return {"auc": 0.6, "forgotten_losses": losses, "forgotten_percentiles": percentiles,
                "test_loss_quantiles": np.linspace(0.0, 2.0, 101).tolist() if with_distribution else []}

    return {"membership_before": {"purge": check([0.0, 0.1], [0.0, 5.0]), "teacher": check([0.2], [10.0])},
            "membership_after": {"purge": check([0.9, 1.2], [45.0, 60.0]), "teacher": check([0.8], [40.0])}}


def test_membership_figure_draws_test_losses_and_each_forgotten_sample_before_and_after():
    fig = forget_figures.membership_figure(membership_record())
    assert [a.text for a in fig.layout.annotations] == [title("teacher"), title("purge")]  # teacher first
    names = [t.name for t in fig.data]
    assert names == ["test losses before", "forgotten samples before", "test losses after",
                     "forgotten samples after"] * 2
    before, after = fig.data[5], fig.data[7]  # the PURGE student's forgotten samples
    assert list(before.y) == [0.0, 5.0] and list(after.y) == [45.0, 60.0]
    assert min(before.x) == forget_figures.LOSS_FLOOR  # a zero loss drawn at the floor of the log axis
    assert fig.data[0].line.dash == "dash" and fig.data[2].line.dash == "solid"
    assert fig.layout.xaxis.type == "log" and list(fig.data[0].y)[-1] == 100
    assert json.loads(fig.to_json())


def test_membership_figure_is_none_for_records_without_a_loss_distribution():
    assert forget_figures.membership_figure(membership_record(with_distribution=False)) is None
    assert "not a proof of forgetting" in forget_figures.MEMBERSHIP_CAPTION
