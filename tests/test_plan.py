"""The partition plan: pure, so tested over many random layouts in milliseconds."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from purge_engine import theory
from purge_engine.config import PurgeConfig
from purge_engine.plan import (
    METHODS,
    Plan,
    job_sample_steps,
    make_mapping,
    make_plan,
    predicted_cost,
    retrain_scope,
    scope_for_changes,
    sisa_epochs,
    training_cost,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layouts(draw):
    n_teachers = draw(st.integers(1, 10))
    config = PurgeConfig(
        n_teachers=n_teachers,
        n_students=draw(st.integers(1, n_teachers)),
        teacher_slices=draw(st.integers(1, 4)),
        student_slices=draw(st.integers(1, 4)),
        student_data=draw(st.sampled_from(["overlap", "disjoint"])),
        student_fraction=draw(st.sampled_from([0.3, 0.5, 0.8])),
        teacher_fraction=draw(st.sampled_from([0.6, 1.0])),
        epochs=draw(st.integers(1, 12)),
        seed=draw(st.integers(0, 2**32)),
    )
    n_pool = draw(st.integers(60, 400))
    try:
        config.validate(n_pool=n_pool)
    except ValueError:
        assume(False)
    return config, n_pool


def _flat(slices) -> np.ndarray:
    return np.concatenate(slices) if len(slices) else np.array([], dtype=np.int64)


@SETTINGS
@given(layouts())
def test_shards_are_disjoint_and_cover_their_data(layout):
    config, n_pool = layout
    plan = make_plan(config, n_pool)
    n_teacher, n_student = config.pool_sizes(n_pool)
    teacher_ids = plan.all_teacher_samples()
    student_ids = plan.all_student_samples()
    assert teacher_ids.size == np.unique(teacher_ids).size == n_teacher
    assert student_ids.size == np.unique(student_ids).size == n_student
    assert teacher_ids.min() >= 0 and max(teacher_ids.max(), student_ids.max()) < n_pool
    if config.student_data == "disjoint":
        assert not set(teacher_ids) & set(student_ids)
    for slices in plan.teacher_shards:
        assert len(slices) == config.teacher_slices and all(s.size > 0 for s in slices)
    for k, chunks in enumerate(plan.student_shards):
        assert len(chunks) == len(plan.mapping[k])
        assert all(len(c) == config.student_slices and all(s.size > 0 for s in c) for c in chunks)


@SETTINGS
@given(st.integers(1, 40).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, t))))
def test_mapping_partitions_the_teachers_evenly_and_contiguously(counts):
    n_teachers, n_students = counts
    mapping = make_mapping(n_teachers, n_students)
    assert [t for group in mapping for t in group] == list(range(n_teachers))
    sizes = [len(g) for g in mapping]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)  # the first N_t mod N_s students get the extra one


@SETTINGS
@given(layouts())
def test_chunk_l_is_labelled_by_the_first_l_plus_1_mapped_teachers(layout):
    plan = make_plan(*layout)
    for student in plan.describe()["students"]:
        group = student["teacher_ids"]
        for chunk in student["chunks"]:
            assert chunk["label_teachers"] == group[: chunk["chunk_id"] + 1]


@SETTINGS
@given(layouts(), st.data())
def test_without_removes_exactly_those_samples_and_keeps_everyone_else_in_place(layout, data):
    config, n_pool = layout
    plan = make_plan(config, n_pool)
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    ids = data.draw(st.lists(st.sampled_from(used.tolist()), min_size=1, max_size=6, unique=True))
    reduced = plan.without(ids)
    assert set(reduced.all_teacher_samples()) == set(plan.all_teacher_samples()) - set(ids)
    assert set(reduced.all_student_samples()) == set(plan.all_student_samples()) - set(ids)
    assert reduced.forgotten == frozenset(ids)
    for sample_id in set(used.tolist()) - set(ids):
        assert reduced.locate(sample_id) == plan.locate(sample_id)
    assert reduced.teacher_epochs == plan.teacher_epochs and reduced.student_epochs == plan.student_epochs
    assert Plan.from_json(reduced.to_json()).same_layout(reduced)


@SETTINGS
@given(layouts(), st.data())
def test_scope_is_sound_and_minimal(layout, data):
    """Every constituent outside the scope (or before its start step) saw no affected sample and no
    label from an affected teacher; every constituent inside it did at its start step."""
    config, n_pool = layout
    plan = make_plan(config, n_pool)
    used = np.union1d(plan.all_teacher_samples(), plan.all_student_samples())
    ids = set(data.draw(st.lists(st.sampled_from(used.tolist()), min_size=1, max_size=5, unique=True)))
    scope = retrain_scope(plan, sorted(ids))
    r = plan.student_slices

    def first_hit_step(step_data, n_steps) -> int | None:
        return next((m for m in range(n_steps) if ids & set(step_data(m).tolist())), None)

    affected_teachers = set()
    for i in range(plan.n_teachers):
        hit = first_hit_step(lambda m, i=i: plan.teacher_step_data(i, m), plan.teacher_slices)
        assert scope.teachers.get(i) == hit
        if hit is not None:
            affected_teachers.add(i)

    for k, group in enumerate(plan.mapping):
        data_hit = first_hit_step(lambda m, k=k: plan.student_step_data(k, m), plan.student_steps(k))
        positions = [p for p, t in enumerate(group) if t in affected_teachers]
        label_hit = min(positions) * r if positions else None
        expected = min((s for s in (data_hit, label_hit) if s is not None), default=None)
        assert scope.students["purge"].get(k) == expected
        assert scope.students["single_teacher"].get(k) == expected
        baseline = 0 if affected_teachers else data_hit
        assert scope.students["baseline"].get(k) == baseline
        touched = {(plan.locate(i)["chunk"], plan.locate(i)["student_slice"]) for i in ids
                   if plan.locate(i)["student"] == k}
        from_teachers = {(c, j) for c in range(min(positions), len(group)) for j in range(r)} if positions else set()
        assert {(c, j) for kk, c, j in scope.label_slices["purge"] if kk == k} == from_teachers | touched


def test_a_teacher_side_request_never_touches_students_the_teacher_does_not_feed():
    config = PurgeConfig(n_teachers=8, n_students=4, student_data="disjoint", student_fraction=0.5)
    plan = make_plan(config, 1437)
    teacher_sample = int(plan.teacher_shards[5][1][0])  # Teacher 6 feeds Student 3 only
    scope = retrain_scope(plan, [teacher_sample])
    assert scope.teachers == {5: 1}
    assert scope.students["purge"] == {2: 1 * config.student_slices}  # Teacher 6 is second in its group
    assert scope.students["baseline"] == {0: 0, 1: 0, 2: 0, 3: 0}


def test_sisa_epoch_rule():
    assert sisa_epochs(4, 10) == (4, 4, 4, 4)  # a = 2e/(S+1) = 4
    assert sisa_epochs(1, 7) == (7,)
    assert sisa_epochs(3, 1) == (1, 1, 1)  # at least one epoch per step
    for steps in range(1, 12):
        for e in range(1, 15):
            epochs = sisa_epochs(steps, e)
            work = sum((m + 1) * n for m, n in enumerate(epochs))  # step m sees m+1 slices
            if (2 * e) % (steps + 1) == 0:
                assert work == e * steps  # exactly e passes over the shard


def _even_plan(n_teachers, n_students, r, epochs):
    # Student data divisible into equal slices: N_s * c * r * 5 samples.
    c = n_teachers // n_students
    n_pool = n_students * c * r * 5
    return make_plan(PurgeConfig(n_teachers=n_teachers, n_students=n_students, teacher_slices=1, student_slices=r,
                                 epochs=epochs, student_data="overlap", student_fraction=1.0), n_pool)


def _teacher_side_ratio(plan):
    """Baseline over PURGE student cost, averaged exactly over a change to each teacher."""
    costs = [predicted_cost(plan, scope_for_changes(plan, {i: 0}, {})) for i in range(plan.n_teachers)]
    return sum(c["baseline"]["sample_steps"] for c in costs) / sum(c["purge"]["sample_steps"] for c in costs)


@pytest.mark.parametrize("n_teachers,n_students,r", [(8, 1, 1), (8, 2, 1), (8, 4, 2), (8, 8, 4), (12, 3, 2),
                                                     (16, 4, 1), (6, 2, 3)])
def test_predicted_cost_equals_the_closed_form_where_its_assumptions_hold(n_teachers, n_students, r):
    steps = n_teachers // n_students * r
    epochs = steps + 1  # a = 2e/(R+1) = 2 epochs per step: whole
    plan = _even_plan(n_teachers, n_students, r, epochs)
    assert _teacher_side_ratio(plan) == pytest.approx(theory.teacher_side_speedup(n_teachers, n_students, r),
                                                      rel=1e-12)


@pytest.mark.parametrize("n_teachers,n_students,r,epochs", [(8, 2, 1, 10), (8, 4, 2, 7), (16, 4, 2, 20)])
def test_predicted_cost_is_within_5_percent_when_only_epoch_rounding_differs(n_teachers, n_students, r, epochs):
    plan = _even_plan(n_teachers, n_students, r, epochs)
    assert _teacher_side_ratio(plan) == pytest.approx(theory.teacher_side_speedup(n_teachers, n_students, r),
                                                      rel=0.05)


def test_student_side_cost_equals_the_closed_form():
    plan = _even_plan(8, 2, 2, 9)  # R = 8, a = 2
    steps = plan.student_steps(0)
    per_step = [predicted_cost(plan, scope_for_changes(plan, {}, {0: s}))["purge"]["sample_steps"]
                for s in range(steps)]
    n_student = plan.describe()["student_samples"]
    assert np.mean(per_step) == pytest.approx(theory.student_side_cost(n_student, 9, 2, steps), rel=1e-12)
    full = training_cost(plan)["purge"]["sample_steps"] / 2
    assert full / np.mean(per_step) == pytest.approx(theory.student_side_speedup(steps), rel=1e-12)


def test_predicted_cost_counts_the_reduced_plan_and_each_method():
    plan = make_plan(PurgeConfig(), 1437)
    scope = retrain_scope(plan, [3, 17, 42])
    cost = predicted_cost(plan, scope)
    assert set(cost) == {"teacher", *METHODS, "full_retrain"}
    reduced = plan.without([3, 17, 42])
    assert cost["full_retrain"]["sample_steps"] == training_cost(reduced)["full_retrain"]["sample_steps"]
    assert cost["purge"]["label_forwards"] > cost["single_teacher"]["label_forwards"]
    assert cost["baseline"]["label_forwards"] > cost["purge"]["label_forwards"]


def test_the_predicted_total_of_a_job_is_counted_once():
    plan = make_plan(PurgeConfig(n_teachers=4, n_students=2), 1437)
    cost, steps = training_cost(plan), {role: c["sample_steps"] for role, c in training_cost(plan).items()}
    assert job_sample_steps(plan) == steps["teacher"] + sum(steps[m] for m in METHODS)
    assert job_sample_steps(plan, ()) == steps["teacher"]  # teachers alone
    assert job_sample_steps(plan, METHODS, teachers=False) == sum(cost[m]["sample_steps"] for m in METHODS)
    scope = retrain_scope(plan, [3, 17])
    request = predicted_cost(plan, scope)
    assert job_sample_steps(plan, ["purge"], scope) == request["teacher"]["sample_steps"] + \
        request["purge"]["sample_steps"]
    assert job_sample_steps(plan, ["purge"], scope, full_retrain=True) == \
        job_sample_steps(plan, ["purge"], scope) + request["full_retrain"]["sample_steps"]


def test_describe_names_the_teachers_that_label_each_chunk_once_a_shard_is_emptied():
    plan = make_plan(PurgeConfig(n_teachers=4, n_students=2), 1437)
    emptied = plan.without(plan.teacher_shard(0))  # Teacher 1, the first of Student 1's group
    chunks = emptied.describe()["students"][0]["chunks"]
    assert [c["label_teachers"] for c in chunks] == [[], [1]]
    assert all(c["label_teachers"] == list(emptied.labelling_teachers("purge", k, c["chunk_id"]))
               for k, s in enumerate(emptied.describe()["students"]) for c in s["chunks"])


@pytest.mark.parametrize("bad,match", [
    ([], "empty request"),
    ([-1], r"\[0, 1436\]"),
    ([1437], r"\[0, 1436\]"),
    ([2.5], "whole numbers"),
    (["7"], "whole numbers"),
    ([True], "whole numbers"),
])
def test_bad_request_ids_are_named(bad, match):
    plan = make_plan(PurgeConfig(), 1437)
    with pytest.raises(ValueError, match=match):
        retrain_scope(plan, bad)


def test_ids_already_forgotten_and_unused_ids_are_refused():
    plan = make_plan(PurgeConfig(), 1437).without([5])
    with pytest.raises(ValueError, match="already forgotten"):
        plan.without([5, 6])
    partial = make_plan(PurgeConfig(teacher_fraction=0.5, student_fraction=0.5), 1437)
    unused = sorted(set(range(1437)) - set(partial.all_teacher_samples()) - set(partial.all_student_samples()))
    with pytest.raises(ValueError, match="not used by any constituent"):
        partial.without(unused[:1])


def test_same_seed_same_plan_other_seed_other_plan():
    a = make_plan(PurgeConfig(seed=3), 500)
    assert a.same_layout(make_plan(PurgeConfig(seed=3), 500))
    assert not a.same_layout(make_plan(PurgeConfig(seed=4), 500))


# -- the epoch floor ------------------------------------------------------------------------------------
def test_the_epoch_floor_overrun_is_warned_with_the_real_passes():
    from purge_engine.plan import epoch_warnings, passes_over_shard, sisa_epochs

    assert passes_over_shard(sisa_epochs(4, 10)) == pytest.approx(10.0)  # on budget: e passes exactly
    assert epoch_warnings(PurgeConfig(n_teachers=8, n_students=2, teacher_slices=2, student_slices=2, epochs=20)) == []
    tight = PurgeConfig(n_teachers=8, n_students=2, teacher_slices=2, student_slices=2, epochs=2)  # 8 student steps
    (warning,) = epoch_warnings(tight)
    assert warning.startswith("Student constituents have 8 steps but an epoch budget of 2")
    assert f"{passes_over_shard(sisa_epochs(8, 2)):.1f} passes" in warning and "at least 5" in warning
    described = make_plan(tight, 1437).describe()["students"][0]
    assert described["passes"] == pytest.approx(passes_over_shard(sisa_epochs(8, 2)), abs=1e-3)
    assert described["passes"] > 2
