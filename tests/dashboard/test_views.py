"""Table and image builders of the dashboard: plain pandas/numpy, no browser, no Streamlit."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from dashboard import views
from purge_engine.config import PurgeConfig
from purge_engine.plan import METHOD_TITLES, make_plan, training_cost

N_POOL = 1437  # digits' train pool


@pytest.fixture(scope="module")
def plan():
    return make_plan(PurgeConfig(), N_POOL)


@pytest.fixture(scope="module")
def describe(plan):
    return plan.describe()


@pytest.fixture(scope="module")
def bundle():
    """A stand-in with the DatasetBundle attributes views read: labels cycle through 0..9."""
    return SimpleNamespace(n_train=N_POOL, train_y=torch.arange(N_POOL, dtype=torch.int64) % 10,
                           class_names=tuple(f"class-{c}" for c in range(10)))


def test_teacher_names_are_one_based_and_compact():
    assert views.teacher_names([0]) == "Teacher 1"
    assert views.teacher_names([0, 1, 2, 3]) == "Teachers 1–4"
    assert views.teacher_names([0, 2]) == "Teachers 1, 3"


def test_teacher_table_has_a_row_per_teacher(plan, describe):
    table = views.teacher_table(describe)
    assert list(table.columns) == ["Teacher", "Samples", "Samples per slice", "Epochs per step", "Feeds"]
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
    table = views.student_table(describe)
    assert len(table) == sum(plan.n_chunks(k) for k in range(plan.n_students))
    first = table[table["Student"] == "Student 1"]
    assert first["Chunk"].tolist() == ["chunk 1", "chunk 2", "chunk 3", "chunk 4"]
    assert first["Labelled by"].tolist() == ["Teacher 1", "Teachers 1–2", "Teachers 1–3", "Teachers 1–4"]
    assert first["Steps"].tolist() == ["1–2", "3–4", "5–6", "7–8"]
    epochs = ", ".join(first["Epochs per step"]).split(", ")
    assert [int(e) for e in epochs] == describe["students"][0]["epochs"]


def test_layout_metrics(describe):
    metrics = views.layout_metrics(describe)
    assert metrics == {"Train pool": N_POOL, "Teacher samples": N_POOL, "Student samples": N_POOL,
                       "Steps per teacher": 2, "Steps per student": "8"}
    uneven = make_plan(PurgeConfig(n_teachers=5, n_students=2), N_POOL).describe()
    assert views.layout_metrics(uneven)["Steps per student"] == "4–6"  # 3 and 2 chunks of 2 slices


def test_cost_table_titles_and_numbers(plan):
    cost = training_cost(plan)
    table = views.cost_table(cost)
    assert list(table.columns) == ["Method", "Sample-steps", "Label forward passes", "Constituents"]
    assert table["Method"].tolist() == [views.TEACHER_TITLE, *(METHOD_TITLES[m] for m in views.COST_ROWS[1:])]
    assert table["Sample-steps"].tolist() == [cost[k]["sample_steps"] for k in views.COST_ROWS]
    assert table["Label forward passes"].iloc[0] == 0


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
    assert views.n_pages(N_POOL) == 60
    ids = np.concatenate([views.page_ids(N_POOL, p) for p in range(1, views.n_pages(N_POOL) + 1)])
    assert np.array_equal(ids, np.arange(N_POOL))
    assert len(views.page_ids(N_POOL, 60)) == N_POOL - 59 * views.PAGE_SIZE


@pytest.mark.parametrize(("shape", "out"), [((3, 8, 8, 1), (3, 160, 160)), ((2, 28, 28, 1), (2, 168, 168)),
                                            ((2, 32, 32, 3), (2, 160, 160, 3))])
def test_upscale_is_nearest_neighbour(shape, out):
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    big = views.upscale(images)
    assert big.shape == out and big.dtype == np.uint8
    factor = out[1] // shape[1]
    assert np.array_equal(big[:, ::factor, ::factor].reshape(images.shape), images)


def test_sample_grid_frame_on_the_real_digits():
    from purge_engine.data import load_dataset

    digits = load_dataset("digits")
    plan = make_plan(PurgeConfig(), digits)
    ids = views.page_ids(digits.n_train, 2)
    frame = views.sample_grid_frame(digits, plan, ids)
    assert frame["sample_id"].iloc[0] == views.PAGE_SIZE
    assert frame["label"].tolist() == [str(int(y)) for y in digits.train_y[views.PAGE_SIZE:2 * views.PAGE_SIZE]]
    assert views.upscale(digits.images(ids)).shape == (views.PAGE_SIZE, 160, 160)
