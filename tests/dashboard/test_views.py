"""Table and image builders of the dashboard: plain pandas/numpy, no browser, no Streamlit."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from dashboard.forget import views as forget_views
from dashboard.setup import views as setup_views
from dashboard.shared import cost, grid, views
from purge_engine import teacher_names
from purge_engine.config import PurgeConfig
from purge_engine.plan import METHOD_TITLES, make_plan, predicted_cost, retrain_scope, training_cost
from purge_engine.vocabulary import title

N_POOL = 1404  # digits' train pool
# The tables below are checked on the layout where every sample sits on both sides (2 students of 4
# chunks each): every sample has a teacher and a student place to show.
OVERLAP = PurgeConfig(n_students=2, student_data="overlap", student_fraction=1.0)


@pytest.fixture(scope="module")
def plan():
    return make_plan(OVERLAP, N_POOL)


@pytest.fixture(scope="module")
def describe(plan):
    return plan.describe()


@pytest.fixture(scope="module")
def bundle():
    """A stand-in with the DatasetBundle attributes views read: labels cycle through 0..9."""
    return SimpleNamespace(n_train=N_POOL, train_y=torch.arange(N_POOL, dtype=torch.int64) % 10,
                           class_names=tuple(f"class-{c}" for c in range(10)))


def test_teacher_names_are_one_based_and_compact():
    assert teacher_names([0]) == "Teacher 1"
    assert teacher_names([0, 1, 2, 3]) == "Teachers 1–4"
    assert teacher_names([0, 2]) == "Teachers 1, 3"


def test_teacher_table_has_a_row_per_teacher(plan, describe):
    table = views.teacher_table(describe)
    assert list(table.columns) == ["Teacher", "Samples", "Samples per slice", "Epochs per step", "Passes over shard",
                                   "Feeds"]
    assert table["Teacher"].tolist() == [f"Teacher {i}" for i in range(1, plan.n_teachers + 1)]
    assert table["Samples"].sum() == describe["teacher_samples"]
    assert table["Feeds"].iloc[0] == "Student 1" and table["Feeds"].iloc[-1] == f"Student {plan.n_students}"
    assert table["Samples per slice"].iloc[0].count(",") == plan.teacher_slices - 1


def test_mapping_table_names_each_students_teachers(describe):
    table = views.mapping_table(describe)
    assert table["Student"].tolist() == ["Student 1", "Student 2"]
    assert table["Taught by"].tolist() == ["Teachers 1–4", "Teachers 5–8"]
    assert table["Samples"].sum() == describe["student_samples"]


def test_student_table_has_a_row_per_chunk_labelled_by_the_first_teachers(plan, describe):
    table = setup_views.student_table(describe)
    assert len(table) == sum(plan.n_chunks(k) for k in range(plan.n_students))
    first = table[table["Student"] == "Student 1"]
    assert first["Chunk"].tolist() == ["chunk 1", "chunk 2", "chunk 3", "chunk 4"]
    assert first["Labelled by"].tolist() == ["Teacher 1", "Teachers 1–2", "Teachers 1–3", "Teachers 1–4"]
    assert first["Steps"].tolist() == ["1–2", "3–4", "5–6", "7–8"]
    epochs = ", ".join(first["Epochs per step"]).split(", ")
    assert [int(e) for e in epochs] == describe["students"][0]["epochs"]


def test_layout_metrics(describe):
    metrics = setup_views.layout_metrics(describe)
    assert metrics == {"Train pool": N_POOL, "Teacher samples": N_POOL, "Student samples": N_POOL,
                       "Steps per teacher": 2, "Steps per student": "8"}
    uneven = make_plan(PurgeConfig(n_teachers=5, n_students=2), N_POOL).describe()
    assert setup_views.layout_metrics(uneven)["Steps per student"] == "4–6"  # 3 and 2 chunks of 2 slices


def test_training_table_titles_and_numbers(plan):
    training = training_cost(plan)
    table = cost.training_table(training)
    assert list(table.columns) == ["Method", "Sample-steps", "Label forward passes", "Constituents"]
    assert table["Method"].tolist() == [views.TEACHER_TITLE, *(METHOD_TITLES[m] for m in cost.ROLES[1:])]
    assert table["Sample-steps"].tolist() == [training[k]["sample_steps"] for k in cost.ROLES]
    assert table["Label forward passes"].iloc[0] == 0


def test_a_request_cost_frame_counts_students_only_and_teachers_on_their_own_row(plan):
    predicted = predicted_cost(plan, retrain_scope(plan, [int(plan.teacher_shards[0][0][0])]))
    table = cost.cost_frame(predicted, ("purge", "baseline")).set_index("Method")
    assert list(table.index) == ["Teacher retraining", "PURGE students", "Baseline students (SISA)", "Full retrain"]
    for role in ("teacher", "purge", "baseline", "full_retrain"):
        row = table.loc[cost.row_title(role)]
        assert row["Predicted sample-steps"] == predicted[role]["sample_steps"]  # nothing added to any row
        assert row["Constituents retrained"] == predicted[role]["constituents"]
    assert table.loc["PURGE students", "Constituents retrained"] == 1  # a teacher-side sample: one student
    assert "Measured sample-steps" not in table.columns  # nothing measured before it runs


def test_sample_grid_frame_places_samples_one_based(bundle, plan):
    ids = views.page_ids(N_POOL, 1)
    frame = views.sample_grid_frame(bundle, plan, ids)
    assert len(frame) == views.PAGE_SIZE and frame["sample_id"].tolist() == list(range(views.PAGE_SIZE))
    where = plan.locate(int(ids[5]))
    row = frame.iloc[5]
    assert (row.teacher, row.teacher_slice) == (where["teacher"] + 1, where["teacher_slice"] + 1)
    assert (row.student, row.chunk, row.student_slice) == (
        where["student"] + 1, where["chunk"] + 1, where["student_slice"] + 1)
    assert row.label == "class-5"
    assert row.caption == (f"#5 · class-5 · T{row.teacher}/s{row.teacher_slice} · "
                           f"S{row.student}/c{row.chunk}/s{row.student_slice}")
    assert frame[["teacher", "teacher_slice", "student", "chunk", "student_slice"]].min().min() >= 1


def test_sample_grid_frame_marks_samples_no_student_uses(bundle):
    plan = make_plan(PurgeConfig(student_fraction=0.5, student_data="disjoint"), N_POOL)
    frame = views.sample_grid_frame(bundle, plan, np.arange(N_POOL))
    no_student = frame["student"].isna()
    assert no_student.sum() == N_POOL - plan.describe()["student_samples"]
    assert frame.loc[no_student, "caption"].str.endswith("S –").all()
    assert frame["teacher"].isna().sum() == N_POOL - plan.describe()["teacher_samples"]
    assert frame["chunk"].dtype == pd.Int64Dtype()


def test_pages_cover_the_pool_once():
    assert views.n_pages(N_POOL) == 59
    ids = np.concatenate([views.page_ids(N_POOL, p) for p in range(1, views.n_pages(N_POOL) + 1)])
    assert np.array_equal(ids, np.arange(N_POOL))
    assert len(views.page_ids(N_POOL, 59)) == N_POOL - 58 * views.PAGE_SIZE == 12  # the short last page


@pytest.mark.parametrize(("shape", "out"), [((3, 8, 8, 1), (3, 160, 160)), ((2, 28, 28, 1), (2, 168, 168)),
                                            ((2, 32, 32, 3), (2, 160, 160, 3))])
def test_upscale_is_nearest_neighbour(shape, out):
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    big = views.upscale(images)
    assert big.shape == out and big.dtype == np.uint8
    factor = out[1] // shape[1]
    assert np.array_equal(big[:, ::factor, ::factor].reshape(images.shape), images)


def test_sample_grid_frame_on_the_real_digits():
    from purge_engine.datasets.readers import load_dataset

    digits = load_dataset("digits")
    plan = make_plan(PurgeConfig(), digits)
    ids = views.page_ids(digits.n_train, 2)
    frame = views.sample_grid_frame(digits, plan, ids)
    assert frame["sample_id"].iloc[0] == views.PAGE_SIZE
    assert frame["label"].tolist() == [str(int(y)) for y in digits.train_y[views.PAGE_SIZE:2 * views.PAGE_SIZE]]
    assert views.upscale(digits.images(ids)).shape == (views.PAGE_SIZE, 160, 160)


# -- the constituents x steps grid and a request's results ----------------------------------------------
def test_planned_cells_match_the_retrain_scope(plan):
    from purge_engine.plan import METHODS, retrain_scope

    sample = int(plan.teacher_shards[2][1][0])  # Teacher 3, slice 2: a teacher-side sample (overlap: maybe student too)
    scope = retrain_scope(plan, [sample])
    roles = ["teacher", *METHODS]
    shape = grid.grid_shape(plan, roles)
    cells = grid.planned_cells(plan, scope, roles)
    assert set(cells) == set(shape) and all(len(cells[k]) == n for k, n in shape.items())
    assert cells[("teacher", 2)] == ["restored", grid.PLANNED]
    assert cells[("teacher", 0)] == ["kept", "kept"]
    for method in METHODS:
        for k in range(plan.n_students):
            first = scope.students[method].get(k)
            row = cells[(method, k)]
            if first is None:
                assert set(row) == {"kept"}
            else:
                assert row.index(grid.PLANNED) == first and row[first:] == [grid.PLANNED] * (len(row) - first)
    html = grid.retrain_grid_html(shape, cells)
    assert html.count('data-state="planned"') == sum(r.count(grid.PLANNED) for r in cells.values())
    assert html.count("<tr><th>Teacher ") == plan.n_teachers


def test_grid_counts_and_empty_cells():
    cells = {("teacher", 0): ["kept", "done"], ("purge", 0): ["pending", "retraining", "done"]}
    assert grid.grid_counts(cells)["done"] == 2 and grid.grid_counts(cells)["pending"] == 1
    html = grid.retrain_grid_html({("teacher", 0): 2, ("purge", 0): 3, ("purge", 1): 3}, cells)
    assert html.count('<td data-state="pending"') == 1 + 3  # Student 2 has no events yet: all pending


def test_grid_cells_and_table_name_the_worker_of_each_step():
    cells = {("teacher", 0): ["done", "done"], ("purge", 1): ["kept", "done"]}
    workers = {("purge", 1): {1: "node-a:11"}, ("teacher", 0): {0: "node-a:11", 1: "node-b:22"}}  # finish order
    html = grid.retrain_grid_html({("teacher", 0): 2, ("purge", 0): 2, ("purge", 1): 2}, cells, workers)
    assert html.count('data-worker="node-a:11"') == 2 and html.count('data-worker="node-b:22"') == 1
    assert 'title="retrained and checkpointed · on node-b:22"' in html
    assert "data-worker" not in grid.retrain_grid_html({("teacher", 0): 2}, cells)  # in-process: no worker
    table = grid.worker_table(workers)
    assert table.to_dict("records") == [
        {"Method": title("teacher"), "Constituent": "Teacher 1", "Worker": "node-a:11", "Steps": "1"},
        {"Method": title("teacher"), "Constituent": "Teacher 1", "Worker": "node-b:22", "Steps": "2"},
        {"Method": title("purge"), "Constituent": "Student 2", "Worker": "node-a:11", "Steps": "2"}]
    assert grid.worker_table({}).empty


def test_execution_text_names_the_executor_and_the_cluster():
    assert grid.execution_text("local", None, None) == "Jobs run in this process."
    assert "a local Ray cluster; it starts with the first job" in grid.execution_text("ray", None, None)
    cluster = {"nodes": 1, "cpus": 16, "gpus": 0}
    assert grid.execution_text("ray", "head:6379", cluster) == (
        "Jobs run on the Ray cluster at `head:6379`: 1 node · 16 CPUs · 0 GPUs.")
    assert grid.execution_text("ray", None, cluster | {"lanes": 4}).endswith(
        "0 GPUs. Each task trains 4 chains as one lane group.")


def record_for(plan, sample_ids, measured=True):
    """A ledger record shaped as Experiment.forget writes it, with measured = predicted."""
    scope = retrain_scope(plan, sample_ids)
    predicted = predicted_cost(plan, scope)
    accuracy = {role: {"test": 0.9, "retained": 0.95, "forgotten": 1.0} for role in ("teacher", "purge")}
    membership = {role: {"forgotten_member_rate": 1.0, "test_member_rate": 0.3, "member_rate": 0.8, "auc": 0.625,
                         "auc_low": 0.581, "auc_high": 0.672, "forgotten_percentile": 12.5,
                         "forgotten_percentiles": [12.5], "forgotten_losses": [0.01],
                         "test_loss_quantiles": np.linspace(0.001, 3.0, 101).tolist()}
                  for role in accuracy}
    record = {"sample_ids": list(sample_ids), "methods": ["purge"], "scope": scope.to_dict(), "predicted": predicted,
              "accuracy_before": accuracy, "membership_before": membership}
    if measured:
        cost = {role: {"sample_steps": predicted[role]["sample_steps"], "seconds": 1.5,
                       "label_forwards": predicted[role]["label_forwards"]} for role in ("teacher", "purge")}
        record.update(cost=cost, accuracy_after=accuracy, membership_after=membership)
    return record


def test_request_cost_table_puts_measured_beside_predicted(plan):
    record = record_for(plan, [int(plan.teacher_shards[0][0][0])])
    table = views.request_cost_table(record)
    assert list(table["Method"]) == [title(r, "retraining") for r in ("teacher", "purge", "full_retrain")]
    rows = table.iloc[:2]
    assert (rows["Measured sample-steps"] == rows["Predicted sample-steps"]).all()
    teacher, purge, full = table.iloc[0], table.iloc[1], table.iloc[2]
    assert purge["Seconds"] == 1.5  # the students' own: the teacher retraining is its own row
    assert purge["Predicted sample-steps"] == record["predicted"]["purge"]["sample_steps"]
    assert pd.isna(full["Measured sample-steps"]) and full[cost.FULL_COLUMN] == teacher[cost.FULL_COLUMN] == "–"
    speedup = float(purge[cost.FULL_COLUMN][:-1])
    bill = teacher["Predicted sample-steps"] + purge["Predicted sample-steps"]
    assert speedup == pytest.approx(full["Predicted sample-steps"] / bill, abs=0.005)
    assert speedup > 1
    unmeasured = views.request_cost_table(record_for(plan, [5], measured=False))
    assert unmeasured["Measured sample-steps"].isna().all()


def test_the_shown_cost_table_says_not_run_instead_of_an_empty_cell(plan):
    table = views.request_cost_table(record_for(plan, [int(plan.teacher_shards[0][0][0])]))
    shown = views.shown_cost_table(table)
    full = shown.iloc[-1]
    assert full["Measured sample-steps"] == "not run" and full["Seconds"] == "not run"
    assert shown.iloc[1]["Seconds"] == "1.50 s"
    assert shown.iloc[1]["Measured sample-steps"] == f"{int(table.iloc[1]['Measured sample-steps']):,}"
    assert "None" not in shown.to_string() and "nan" not in shown.to_string()


def test_accuracy_membership_and_verdict(plan):
    record = record_for(plan, [7])
    acc = forget_views.accuracy_table(record)
    assert list(acc["Model"]) == [title("teacher"), title("purge")] and acc["Test before"].iloc[0] == 90.0
    member = forget_views.membership_table(record)
    assert member["Forgotten: member rate after"].iloc[0] == 100.0
    assert member["Attack AUC before"].iloc[0] == "0.62 (0.58–0.67)" and member["Members: member rate"].iloc[0] == 80.0
    assert member["Forgotten: loss percentile after"].iloc[0] == 12.5
    assert views.verdict(record)[0] == "not verified"
    exact = {**record, "exact": True, "equal": True, "parameters_compared": 1234, "constituents_compared": 2,
             "max_abs_diff": 0.0, "reason": "..."}
    assert views.verdict(exact)[0] == "exact" and views.verdict(exact)[1].startswith("1,234 parameters in all 2 ")
    assert views.verdict({**exact, "exact": False, "reason": "exactness not claimed: threads"}) == ("not claimed",
                                                                                                  "threads")
    assert views.verdict({**exact, "exact": False, "equal": False, "max_abs_diff": 0.5})[0] == "differs"


def test_scope_summary_names_what_retrains(plan, describe):
    from purge_engine.plan import retrain_scope

    sample = int(plan.teacher_shards[7][0][0])
    lines = forget_views.scope_summary(describe, retrain_scope(plan, [sample]).to_dict(), ["purge", "baseline"])
    assert lines[0].startswith("Teachers: Teacher 8 from step 1")
    assert lines[2].startswith(METHOD_TITLES["baseline"]) and "0 of 2 kept" in lines[2]


def test_small_formatters():
    assert views.percent_text(0.9712) == "97.1%" and views.percent_text(None) == "–"  # the empty set: None
    assert setup_views.human_bytes(999) == "999 B" and setup_views.human_bytes(39_000_000) == "39.0 MB"
    assert forget_views.id_list([3, 17, 42]) == "#3, #17, #42"
    assert forget_views.id_list(range(40), limit=2) == "#0, #1 … (+38 more)"


def test_available_samples_are_those_in_some_shard_and_not_yet_forgotten(plan):
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    assert np.array_equal(forget_views.available_samples(plan), used)
    gone = used[[0, 5]]
    assert np.array_equal(forget_views.available_samples(plan.without(gone.tolist())), np.setdiff1d(used, gone))


def test_a_layout_suggests_its_run_name_and_states_its_storage():
    config = PurgeConfig(n_teachers=8, n_students=4, teacher_slices=2, student_slices=3, epochs=6, seed=7)
    assert setup_views.default_run_name(config) == "digits-t8-s4-r2x3-e6-seed7"
    text = setup_views.storage_text({"total_bytes": 2048, "checkpoints": 1200, "teacher_checkpoints": 1000,
                                     "student_checkpoints": 500, "soft_labels": 36, "outputs": 512})
    assert "**2.0 kB**" in text and "1,200 checkpoints" in text and "teachers 1.0 kB" in text
    assert "cached test outputs 512 B" in text
