"""Training: exact resume, determinism, isolation of soft labels, a run refusing another config."""

import shutil

import numpy as np
import pytest
import torch

from purge_engine.events import StepEvent
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS
from purge_engine.soft_labels import ensemble_soft_labels, label_teachers
from purge_engine.training import Cancelled
from tests.conftest import snapshot


def all_parameters(exp: Experiment) -> dict[tuple[str, int], dict[str, torch.Tensor]]:
    counts = {"teacher": exp.config.n_teachers, **{m: exp.config.n_students for m in METHODS}}
    return {(role, c): exp.parameters(role, c) for role, n in counts.items() for c in range(n)}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for position in a:
        for name in a[position]:
            assert torch.equal(a[position][name], b[position][name]), f"{position} {name} differs"


@pytest.fixture(scope="module")
def trained(train_once, tiny_config):
    exp = train_once(tiny_config)
    return exp, all_parameters(exp)


def test_every_constituent_is_trained(trained):
    exp, _ = trained
    assert exp.trained_roles() == ["teacher", *METHODS]  # its checkpoints: test_checkpoints.py


def test_training_again_reuses_every_checkpoint(trained):
    exp, params = trained
    events = []
    costs = Experiment.open(exp.store.root).train(on_event=events.append)
    assert all(c.sample_steps == 0 for c in costs.values())
    assert {e.kind for e in events if isinstance(e, StepEvent)} == {"reused"}


@pytest.mark.parametrize("cut", [1, 5, 13, 30])
def test_a_run_cancelled_midway_resumes_to_the_same_parameters(trained, tmp_path, cut):
    reference_exp, reference = trained
    exp = Experiment.create(reference_exp.config, tmp_path / "run")
    finished = []

    def on_event(event):
        if isinstance(event, StepEvent) and event.kind == "trained":
            finished.append(event)

    with pytest.raises(Cancelled):
        exp.train(on_event=on_event, should_stop=lambda: len(finished) >= cut)
    assert len(finished) == cut
    Experiment.open(tmp_path / "run").train()
    assert_same(all_parameters(Experiment.open(tmp_path / "run")), reference)


@pytest.mark.parametrize("role,constituent", [("teacher", 2), ("purge", 0), ("single_teacher", 1), ("baseline", 1)])
def test_resuming_from_each_step_checkpoint_equals_the_uninterrupted_run(trained, tmp_path, role, constituent):
    reference_exp, reference = trained
    run = tmp_path / "run"
    shutil.copytree(reference_exp.store.root, run)
    exp = Experiment.open(run)
    n_steps = len(exp.job(role, constituent).steps)
    for keep in range(n_steps):  # drop every checkpoint after step `keep`, then train again
        for later in range(keep + 1, n_steps):
            for suffix in (".safetensors", ".json"):
                exp.store.checkpoint_stem(role, constituent, later).with_suffix(suffix).unlink(missing_ok=True)
        costs = Experiment.open(run).train(methods=[] if role == "teacher" else [role])
        assert costs[role].steps_trained == n_steps - keep - 1
        assert_same({(role, constituent): exp.parameters(role, constituent)}, {(role, constituent): reference[
            (role, constituent)]})


def test_same_seed_same_parameters_other_seed_other_parameters(trained, tmp_path):
    reference_exp, reference = trained
    again = Experiment.create(reference_exp.config, tmp_path / "again")
    again.train(methods=["purge"])
    for position in [("teacher", i) for i in range(4)] + [("purge", k) for k in range(2)]:
        assert_same({position: again.parameters(*position)}, {position: reference[position]})
    other = Experiment.create(reference_exp.config.replace(seed=1), tmp_path / "other")
    other.train(methods=[])
    assert not torch.equal(other.parameters("teacher", 0)["0.weight"], reference[("teacher", 0)]["0.weight"])


def test_chunk_l_labels_depend_only_on_its_first_l_plus_1_teachers(trained):
    exp, _ = trained
    plan = exp.plan
    student, chunk = 0, 0  # labelled by Teacher 1 alone; Teacher 2 feeds chunk 1 only
    teachers = label_teachers(plan, "purge", student, chunk)
    assert teachers == plan.mapping[student][:1]
    ids = np.concatenate(plan.student_shards[student][chunk])
    inputs = exp.bundle.train_x[torch.as_tensor(ids)]
    models = {t: exp.load_constituent("teacher", t) for t in range(exp.config.n_teachers)}
    before = ensemble_soft_labels([models[t] for t in teachers], inputs, exp.config.temperature)
    with torch.no_grad():  # perturb every teacher outside the chunk's set
        for t in set(range(exp.config.n_teachers)) - set(teachers):
            for p in models[t].parameters():
                p.add_(1.0)
    after = ensemble_soft_labels([models[t] for t in teachers], inputs, exp.config.temperature)
    assert torch.equal(before, after)
    # ...and the cached labels' keys move only with the chunk's own teachers
    keys = exp.chains.teacher_keys
    changed = list(keys)
    changed[plan.mapping[student][1]] = "perturbed"

    def moved(method, chunk_id):
        from purge_engine.constituents import label_key

        teachers = plan.labelling_teachers(method, student, chunk_id)
        ids = plan.student_shards[student][chunk_id][0]
        perturbed = label_key(method, tuple(changed[t] for t in teachers), ids, exp.config.temperature)
        return perturbed != exp.chains.slice_label_key(method, student, chunk_id, 0)

    assert not moved("purge", 0) and moved("purge", 1) and moved("baseline", 0)


def test_a_config_that_does_not_match_the_run_is_refused_and_nothing_changes(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained[0].store.root, run)
    before = snapshot(run, ignore=())
    with pytest.raises(ValueError, match="another config: n_students is 2 there, 1 here"):
        Experiment.create(trained[0].config.replace(n_students=1), run)
    assert snapshot(run, ignore=()) == before


def test_evaluate_reports_fractions_for_every_ensemble_and_constituent(trained):
    report = trained[0].evaluate()
    assert set(report["accuracy"]) == {"teacher", *METHODS}
    assert all(0.0 <= a <= 1.0 for a in report["accuracy"].values())
    assert len(report["constituents"]["teacher"]) == 4 and len(report["constituents"]["baseline"]) == 2
    vote = Experiment(trained[0].store, trained[0].config.replace(aggregation="vote"), trained[0].plan,
                      trained[0].bundle).evaluate()
    assert 0.0 <= vote["accuracy"]["teacher"] <= 1.0


def test_a_methods_seconds_are_its_steps_seconds_with_labels_counted_once(tiny_config, tmp_path):
    # Soft labels are computed inside each step's data, so the steps' seconds hold them already.
    exp = Experiment.create(tiny_config, tmp_path / "timed")
    events = []
    costs = exp.train(on_event=events.append)
    for role in ("teacher", *METHODS):
        steps = [e.seconds for e in events if isinstance(e, StepEvent) and e.kind == "trained" and e.role == role]
        assert costs[role].seconds == pytest.approx(sum(steps), rel=1e-9)
        labels = sum(e.seconds for e in events if getattr(e, "kind", "") == "labelled" and
                     getattr(e, "method", None) == role)
        assert labels <= costs[role].seconds  # inside it, not added to it


def test_a_chain_trained_in_parts_equals_it_trained_whole_and_reports_each_step_once(trained, tmp_path):
    from purge_engine.execution.chains import ChainTask, schedule
    from purge_engine.execution.executors import LocalExecutor

    exp = Experiment.open(shutil.copytree(trained[0].store.root, tmp_path / "run"))
    final = exp.job("purge", 1).steps[-1].step
    whole = exp.parameters("purge", 1)
    for m in range(final + 1):  # only the teachers stay current
        for suffix in (".json", ".safetensors"):
            exp.store.checkpoint_stem("purge", 1, m).with_suffix(suffix).unlink()
    events = []
    parts = [t for t in schedule(exp.plan, ["purge"], by_segment=True) if t.role == "purge" and t.constituent == 1]
    assert len(parts) > 1 and all(isinstance(t, ChainTask) for t in parts)
    LocalExecutor().train(exp, parts, events.append, lambda: False)
    steps = [e for e in events if isinstance(e, StepEvent) and e.kind != "training"]
    assert [e.step for e in steps] == list(range(final + 1)) and {e.kind for e in steps} == {"trained"}
    assert_same({("purge", 1): whole}, {("purge", 1): exp.parameters("purge", 1)})
