"""constituents.py, pure: the role table and the content-key chain of every step, computed from the plan alone."""

import numpy as np
import pytest

from purge_engine.config import PurgeConfig
from purge_engine.constituents import ROLES, Chains, Segment, check_methods, count, segments, side_of
from purge_engine.plan import METHODS, make_plan

CONFIG = PurgeConfig(n_teachers=6, n_students=2, teacher_slices=2, student_slices=2)


@pytest.fixture(scope="module")
def plan():
    return make_plan(CONFIG, 1437)


def test_the_role_table_names_every_role_and_side(plan):
    assert list(ROLES) == ["teacher", *METHODS]
    assert [side_of(r) for r in ROLES] == ["teacher", "student", "student", "student"]
    assert count("teacher", plan) == 6 and all(count(m, plan) == 2 for m in METHODS)
    with pytest.raises(ValueError, match="role: got 'teachers'"):
        side_of("teachers")
    with pytest.raises(ValueError, match="methods: got"):
        check_methods(["purge", "distil"])


def test_a_chain_has_one_step_per_slice_step_and_keys_are_chained(plan):
    chains = Chains(CONFIG, plan)
    teacher = chains.steps("teacher", 0)
    student = chains.steps("purge", 1)
    assert len(teacher) == plan.teacher_slices and len(student) == plan.student_steps(1)
    assert len({s.key for s in teacher + student}) == len(teacher) + len(student)
    np.testing.assert_array_equal(student[-1].ids, plan.student_step_data(1, len(student) - 1))
    assert chains.steps("purge", 1) is student  # computed once per plan


def test_forgetting_a_teacher_sample_moves_only_the_keys_it_touches():
    config = CONFIG.replace(student_data="disjoint", student_fraction=0.4)
    plan = make_plan(config, 1437)
    sample = int(plan.teacher_shards[4][1][0])  # Teacher 5, slice 2: second of Student 2's group (3, 4, 5)
    before, after = Chains(config, plan), Chains(config, plan.without([sample]))

    def keys(chains, role, c):
        return [s.key for s in chains.steps(role, c)]

    assert keys(after, "teacher", 4)[0] == keys(before, "teacher", 4)[0]  # slice 1 still holds the same samples
    assert keys(after, "teacher", 4)[1] != keys(before, "teacher", 4)[1]
    assert all(keys(after, "teacher", i) == keys(before, "teacher", i) for i in range(6) if i != 4)
    assert keys(after, "purge", 0) == keys(before, "purge", 0)  # Student 1 is not fed by Teacher 5
    r = plan.student_slices
    assert keys(after, "purge", 1)[:r] == keys(before, "purge", 1)[:r]  # chunk 1: Teacher 4 alone
    assert keys(after, "purge", 1)[r] != keys(before, "purge", 1)[r]  # chunk 2: Teacher 5 enters
    assert keys(after, "baseline", 0)[0] != keys(before, "baseline", 0)[0]  # every baseline label moved


def test_keys_depend_on_the_seed_and_the_config_fingerprint(plan):
    base = Chains(CONFIG, plan).final_key("teacher", 0)
    assert Chains(CONFIG.replace(seed=1), plan).final_key("teacher", 0) != base
    assert Chains(CONFIG.replace(teacher_lr=1e-3), plan).final_key("teacher", 0) != base
    assert Chains(CONFIG.replace(aggregation="vote"), plan).final_key("teacher", 0) == base  # not trained on


def test_a_student_chain_is_cut_where_its_steps_first_need_a_new_teacher(plan):
    steps, per_chunk = plan.student_steps(0), plan.student_slices
    group = plan.mapping[0]
    purge = segments(plan, "purge", 0)
    assert purge == tuple(Segment(c * per_chunk, (c + 1) * per_chunk, tuple(sorted(group[:c + 1])))
                          for c in range(plan.n_chunks(0)))
    single = segments(plan, "single_teacher", 0)
    assert [(s.first, s.end) for s in single] == [(s.first, s.end) for s in purge]
    assert single[0].teachers == (group[0],) and single[-1].teachers == tuple(sorted(group))
    assert segments(plan, "baseline", 0) == (Segment(0, steps, tuple(range(plan.n_teachers))),)


def test_an_emptied_teacher_is_no_segments_dependency(plan):
    group = plan.mapping[1]
    reduced = plan.without(plan.teacher_shard(group[0]).tolist())
    cut = segments(reduced, "purge", 1)
    assert all(group[0] not in s.teachers for s in cut)
    assert cut[0].first == 0 and cut[-1].end == reduced.student_steps(1)
    assert all(a.end == b.first for a, b in zip(cut, cut[1:], strict=False))  # the parts tile the chain
