"""lanes.py: W chains trained at once as lanes of one batched model. Exact against a from-scratch run
of the same path (other lanes idle or busy), refused against another path, resumable, and every bad W
refused with the field's name and range."""

import json

import pytest
import torch

import purge_engine.execution.lanes as lanes
from purge_engine.config import LANE_LIMIT, PurgeConfig
from purge_engine.events import StepEvent
from purge_engine.execution.choice import choose, make_executor
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS
from tests.test_forget import pick_request, random_case

CONFIG = PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, epochs=2, batch_size=32,
                     threads=1)
ROLES = ["teacher", *METHODS]


def on_lanes(exp: Experiment, width: int) -> Experiment:
    exp.executor = make_executor("lanes", lanes=width)
    return exp


@pytest.fixture(scope="module")
def lanes_run(tmp_path_factory):
    """CONFIG trained in groups of 3 lanes: 4 teachers share lanes 0-2 (teacher 3 follows teacher 0)."""
    exp = on_lanes(Experiment.create(CONFIG, tmp_path_factory.mktemp("lanes") / "run"), 3)
    exp.train()
    return exp


def test_lanes_train_every_constituent_and_record_their_path(lanes_run):
    for role in ROLES:
        for c in range(CONFIG.n_teachers if role == "teacher" else CONFIG.n_students):
            assert lanes_run.is_current(role, c)
    sidecar = json.loads(lanes_run.store.checkpoint_stem("purge", 1, 3).with_suffix(".json").read_text())
    assert sidecar["environment"]["path"] == "lanes:3:v2" and sidecar["executor"] == "lanes"
    assert lanes_run.store.read_environment()["lanes"] == 3
    accuracy = lanes_run.evaluate()["accuracy"]
    assert accuracy["teacher"] > 0.6  # they learn: 10 classes, chance is 0.1


def test_the_runs_own_path_serves_it_and_a_new_run_gets_lanes_only_on_a_gpu(lanes_run, train_once, tmp_path,
                                                                          capsys):
    """Left unasked (or "auto"): a run trained in lanes of 3 keeps lanes of 3, and its requests verify exact
    on that path; a run trained by the loop, and a new run on a CPU, get the loop; a new run on a GPU, lanes."""
    from purge_engine.cli import main
    from purge_engine.execution.executors import LocalExecutor
    from tests.conftest import copy_of

    exp = copy_of(lanes_run, tmp_path / "lanes")
    for asked in (None, make_executor("auto")):
        assert choose(exp.store, exp.device, asked).path == "lanes:3:v2"
    assert main(["forget", "--run", str(exp.store.root), "--samples", str(int(exp.plan.teacher_shards[1][0][0])),
                 "--verify", "--json"]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    assert verification["exact"] is True, verification["reason"]
    assert Experiment.open(exp.store.root).store.read_environment()["path"] == "lanes:3:v2"
    looped = copy_of(train_once(CONFIG), tmp_path / "loop")
    assert isinstance(Experiment.open(looped.store.root).executor, LocalExecutor)
    fresh = Experiment.create(CONFIG.replace(seed=5), tmp_path / "fresh")
    assert isinstance(fresh.executor, LocalExecutor)  # on a CPU lanes serve a forget request slower
    assert choose(fresh.store, torch.device("cuda")).name == "lanes"
    assert main(["train", "--run", str(tmp_path / "x"), "--executor", "auto", "--lanes", "4"]) != 0
    assert "--lanes applies to --executor lanes or ray only" in capsys.readouterr().err


def test_another_path_on_a_trained_run_is_refused_and_nothing_changes(lanes_run, tmp_path, capsys):
    """--executor local (the loop) or lanes of another W on a run trained in lanes of 3: refused with a
    sentence before any work, the run's files as they were."""
    from purge_engine.cli import main
    from tests.conftest import copy_of

    exp = copy_of(lanes_run, tmp_path / "run")
    before = exp.param_hashes(ROLES)
    sample = str(int(exp.plan.teacher_shards[1][0][0]))
    for flags in (["--executor", "local"], ["--executor", "lanes", "--lanes", "2"]):
        assert main(["forget", "--run", str(exp.store.root), "--samples", sample, *flags]) != 0
        err = capsys.readouterr().err
        assert "executor: this run was trained on the path 'lanes:3:v2'" in err and "Traceback" not in err
    again = Experiment.open(exp.store.root)
    assert again.param_hashes(ROLES) == before and again.latest_request() is None
    exp.executor = make_executor("local")  # assigned around the choice: Run.train still refuses
    with pytest.raises(ValueError, match="one run's steps must all be trained on one path"):
        exp.train()


def test_switch_path_retrains_the_whole_run_on_the_new_path_and_it_verifies_exact(lanes_run, tmp_path, capsys):
    from purge_engine.cli import main
    from tests.conftest import copy_of

    exp = copy_of(lanes_run, tmp_path / "run")
    assert main(["train", "--run", str(exp.store.root), "--teachers", "4", "--students", "2", "--teacher-slices",
                 "2", "--student-slices", "2", "--epochs", "2", "--batch-size", "32", "--threads", "1",
                 "--executor", "local", "--switch-path", "--json"]) == 0
    costs = json.loads(capsys.readouterr().out)["cost"]
    assert sum(c["steps_trained"] for c in costs.values()) == sum(len(exp.job(r, c).steps)
                                                                   for r, c in exp.constituents(ROLES))
    switched = Experiment.open(exp.store.root)
    assert switched.executor.path == "loop" and switched.store.read_environment()["path"] == "loop"
    switched.forget([int(switched.plan.teacher_shards[2][0][0])], score=False)
    verdict = switched.verify(affected_only=True)
    assert verdict["exact"] is True, verdict["reason"]


def test_a_run_whose_steps_were_trained_on_two_paths_is_not_claimed_with_the_reason(lanes_run, train_once,
                                                                                   tmp_path):
    """A chain whose later steps came from the loop and earlier ones from lanes (as a request served on
    another path used to leave): verify says why it claims nothing, never that the run differs."""
    import shutil

    from tests.conftest import copy_of

    exp = copy_of(lanes_run, tmp_path / "run")
    exp.forget([int(exp.plan.teacher_shards[0][0][0])], score=False)
    looped = Experiment.create(CONFIG, tmp_path / "loop", exclude=sorted(exp.plan.forgotten))
    looped.train()
    last = exp.job("teacher", 1).steps[-1].step
    for suffix in (".json", ".safetensors"):  # teacher 1's last step, as the loop trains it on the same data
        shutil.copyfile(looped.store.checkpoint_stem("teacher", 1, last).with_suffix(suffix),
                        exp.store.checkpoint_stem("teacher", 1, last).with_suffix(suffix))
    verdict = exp.verify(affected_only=True)
    assert verdict["exact"] is False
    assert verdict["reason"].startswith("exactness not claimed: steps trained on different paths: ")
    assert "'lanes:3:v2'" in verdict["reason"] and "'loop' (e.g. teacher 1 step 1)" in verdict["reason"]


def test_a_lane_learns_what_the_loop_learns_up_to_rounding(lanes_run, train_once):
    loop = train_once(CONFIG)
    for role, c in (("teacher", 3), ("baseline", 1)):
        a, b = lanes_run.parameters(role, c), loop.parameters(role, c)
        assert not all(torch.equal(a[k], b[k]) for k in a)  # another path: other bits, never compared as equal
        assert max(float((a[k] - b[k]).abs().max()) for k in a) < 0.05  # the same training up to rounding


def test_cli_train_and_forget_on_lanes_verify_exactly(tmp_path, capsys):
    from purge_engine.cli import main

    run = tmp_path / "run"
    assert main(["train", "--teachers", "4", "--students", "2", "--epochs", "2", "--run", str(run),
                 "--executor", "lanes", "--lanes", "4", "--json"]) == 0
    capsys.readouterr()
    exp = Experiment.open(run)
    samples = f"{int(exp.plan.teacher_shards[1][0][0])},{int(exp.plan.student_shards[0][1][0][0])}"
    assert main(["forget", "--run", str(run), "--samples", samples, "--executor", "lanes", "--lanes", "4",
                 "--verify", "--json"]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    # the reference trains every constituent from scratch with all lanes busy; the retrain ran a few
    # chains with the other lanes idle: equal bits mean a lane depends on nothing but itself
    assert verification["exact"] is True, verification["reason"]
    assert verification["forgotten_absent"] and verification["cost_matches_prediction"]


def test_lanes_left_to_choose_w_follow_the_runs_own_width(lanes_run, tmp_path, capsys):
    """The device's default W is 4 on a CPU; a run trained in groups of 3 is retrained in groups of 3."""
    from purge_engine.cli import main
    from tests.conftest import copy_of

    assert lanes.auto_lanes() != 3
    exp = copy_of(lanes_run, tmp_path / "run")
    assert main(["forget", "--run", str(exp.store.root), "--samples", str(int(exp.plan.teacher_shards[2][0][0])),
                 "--executor", "lanes", "--verify", "--json"]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    assert verification["exact"] is True, verification["reason"]
    assert Experiment.open(exp.store.root).store.read_environment()["lanes"] == 3
    fresh = Experiment.create(CONFIG.replace(seed=9), tmp_path / "fresh")
    assert choose(fresh.store, fresh.device, make_executor("lanes", lanes=5)).lanes == 5  # a W asked for is kept


def test_verify_refuses_the_claim_on_another_path_or_width(lanes_run, tmp_path):
    """An executor assigned around the choice (a script): the reference trains on its path, and verify
    names the difference instead of calling the run inexact."""
    from tests.conftest import copy_of

    for executor, path in ((make_executor("local"), "'loop'"), (make_executor("lanes", lanes=2), "'lanes:2:v2'")):
        exp = copy_of(lanes_run, tmp_path / f"run-{path.strip(chr(39)).replace(':', '-')}")
        exp.forget([int(exp.plan.teacher_shards[0][0][0])], score=False)
        exp.executor = executor
        verdict = exp.verify(affected_only=True)
        assert verdict["exact"] is False and f"path was 'lanes:3:v2' when trained, {path} now" in verdict["reason"]


def test_a_cancelled_lanes_run_resumes_to_the_same_bits(lanes_run, tmp_path):
    exp = on_lanes(Experiment.create(CONFIG, tmp_path / "run"), 3)
    trained = []

    def stop_after_five() -> bool:
        return len(trained) >= 5

    with pytest.raises(Exception, match="cancelled"):
        exp.train(on_event=lambda e: trained.append(e) if isinstance(e, StepEvent) and e.kind == "trained" else None,
                  should_stop=stop_after_five)
    resumed = on_lanes(Experiment.open(tmp_path / "run"), 3)
    resumed.train()
    assert resumed.param_hashes(ROLES) == lanes_run.param_hashes(ROLES)


def random_requests_equal_a_from_scratch_run(case: int, run, device: str, executor) -> None:
    """Random case `case` trained on `device` by `executor`, its random requests served, then verified
    against a from-scratch run on the same device and path: exact, forgotten samples absent."""
    rng, config, kind = random_case(case)
    exp = Experiment.create(config.replace(device=device), run)
    exp.executor = executor
    exp.train()
    for ids in pick_request(rng, exp.plan, kind):
        assert exp.forget(ids, score=False).cost_matches_prediction is True
    verdict = exp.verify()
    assert verdict["exact"] is True, verdict["reason"]
    assert verdict["forgotten_absent"] and verdict["cost_matches_prediction"]


@pytest.mark.parametrize("case", range(6))
def test_random_requests_on_lanes_equal_a_from_scratch_run(case, tmp_path):
    random_requests_equal_a_from_scratch_run(case, tmp_path / "run", "cpu", make_executor("lanes", lanes=1 + case % 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: none on this machine")
@pytest.mark.parametrize("executor, case", [("lanes", 0), ("lanes", 1), ("lanes", 2), ("local", 3), ("local", 4)])
def test_random_requests_on_a_gpu_equal_a_from_scratch_run_on_the_same_gpu(executor, case, tmp_path):
    """The exactness property on CUDA: a retrain from checkpoints against a from-scratch run, same GPU."""
    chosen = make_executor("lanes", lanes=(4, 8, 32)[case]) if executor == "lanes" else make_executor("local")
    random_requests_equal_a_from_scratch_run(case, tmp_path / "run", "cuda", chosen)


def _one_lane_trained(model: str, dataset: str, width: int, lane: int, steps: int = 3, batch: int = 16) \
        -> torch.Tensor:
    """Lane `lane` of a group of `width` grouped-kernel lanes after `steps` batches of its own data, the
    other lanes busy with other models and other data; its parameters, flattened."""
    import torch.nn.functional as F

    from purge_engine.datasets.sources import DATASETS
    from purge_engine.models import build_model

    spec = DATASETS[dataset]
    template = build_model(model, spec, 0)
    models = [build_model(model, spec, 0 if w == lane else 10 + w) for w in range(width)]
    params = [torch.stack(list(tensors)).detach().requires_grad_(True)
              for tensors in zip(*(m.parameters() for m in models), strict=True)]
    views = [[p.detach()[w] for p in params] for w in range(width)]
    optimizer = lanes._lane_adam([v for row in views for v in row], 1e-3, torch.device("cpu"))
    forward, grouped = lanes._lane_forward(template, "channels_last")
    assert grouped
    mine, theirs = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2 + width)
    for _ in range(steps):
        x = torch.randn((width, batch, spec.channels, spec.height, spec.width), generator=theirs)
        y = torch.randint(0, spec.n_classes, (width, batch), generator=theirs)
        x[lane] = torch.randn(x.shape[1:], generator=mine)
        y[lane] = torch.randint(0, spec.n_classes, (batch,), generator=mine)
        for p in params:
            p.grad = None
        F.cross_entropy(forward(params, x).flatten(0, 1), y.flatten(), reduction="none").view(width, batch) \
            .mean(1).sum().backward()
        for w in range(width):
            for view, p in zip(views[w], params, strict=True):
                view.grad = p.grad[w]
        optimizer.step()
    return torch.cat([v.flatten() for v in views[lane]])


@pytest.mark.parametrize("model", ["digits-cnn", "mlp"])
def test_a_cpu_group_compacts_only_to_sizes_whose_training_equals_the_full_group(model, tmp_path):
    """What lets a CPU group compute only its busy lanes: the probe's sizes. Checked another way here:
    three Adam steps of a lane in a group of each candidate size, other lanes busy with other data,
    against the same lane in the full group; equal exactly for the sizes the probe kept (which sizes
    those are depends on the CPU: on one AVX2 machine groups of 1 and 3 differ from 2, 4, 5 and 8)."""
    width = 5
    exp = Experiment.create(CONFIG.replace(teacher_model=model, memory_format="channels_last"), tmp_path / "run")
    group = lanes._Group(exp, "teacher", width)
    assert set(group.sizes) <= {k for k in lanes.COMPACT_CANDIDATES if k < width}
    full = _one_lane_trained(model, "digits", width, width - 1, batch=CONFIG.batch_size)
    for k in (k for k in lanes.COMPACT_CANDIDATES if k < width):
        same = torch.equal(_one_lane_trained(model, "digits", k, k - 1, batch=CONFIG.batch_size), full)
        assert same == (k in group.sizes), (k, group.sizes)


def test_a_cpu_group_computes_only_its_busy_lanes_rounded_up_to_a_proved_size(lanes_run):
    group = lanes._Group(lanes_run, "teacher", 8)
    group.sizes = (2, 4, 6)  # as a probe on some CPU may find
    assert group._computed([True] * 3 + [False] * 5) == [0, 1, 2, 3]
    assert group._computed([False] * 5 + [True] + [False] * 2) == [0, 5]  # one busy lane and an idle one
    assert group._computed([True] * 7 + [False]) == list(range(8))  # no proved size holds 7: all W
    group.sizes = ()
    assert group._computed([False] * 7 + [True]) == list(range(8))  # none proved: all W, always
    assert lanes._Group(lanes_run, "teacher", 1)._computed([True]) == [0]
    key_count = len(lanes._COMPACT_SIZES)
    lanes._Group(lanes_run, "teacher", 8)
    assert len(lanes._COMPACT_SIZES) == key_count  # cached: the probe runs once per model, shape and W


@pytest.mark.parametrize("bad", [0, -1, LANE_LIMIT + 1, 2.5, "8", True, None])
def test_a_bad_lane_count_is_refused_with_its_range(bad):
    if bad is None:  # None means "choose for the device"
        assert make_executor("lanes", lanes=None).lanes == lanes.auto_lanes()
        return
    with pytest.raises(ValueError, match=rf"lanes: got .*, must be an integer from 1 to {LANE_LIMIT}"):
        make_executor("lanes", lanes=bad)


def test_more_lanes_than_memory_allows_are_refused_before_anything_is_trained(tmp_path, monkeypatch):
    exp = on_lanes(Experiment.create(CONFIG, tmp_path / "run"), 64)
    monkeypatch.setattr(lanes, "_free_bytes", lambda device: 50 * 2**20)  # 50 MiB free
    with pytest.raises(ValueError, match=r"lanes: got 64, .* use at most \d+ lanes"):
        exp.train()
    assert not list((tmp_path / "run").rglob("*.safetensors"))


def test_the_cli_refuses_bad_lanes_without_a_traceback(tmp_path, capsys):
    from purge_engine.cli import main

    for argv, message in ((["--executor", "lanes", "--lanes", "0"], "lanes: got 0, must be an integer from 1"),
                          (["--lanes", "4"], "--lanes applies to --executor lanes or ray only")):
        assert main(["train", "--run", str(tmp_path / "run"), *argv]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: none on this machine")
def test_lanes_on_a_gpu_are_exact_and_record_the_cuda_settings(tmp_path):
    exp = on_lanes(Experiment.create(CONFIG.replace(device="cuda"), tmp_path / "run"), 4)
    exp.train()
    exp.forget([int(exp.plan.teacher_shards[1][0][0])], score=False)
    verdict = exp.verify()
    assert verdict["exact"] is True, verdict["reason"]
    env = json.loads(exp.store.checkpoint_stem("teacher", 0, 0).with_suffix(".json").read_text())["environment"]
    assert env["deterministic"] is True and env["tf32_conv"] is False and env["cudnn_benchmark"] is False


def test_check_repair_rebuilds_a_damaged_lanes_checkpoint_on_its_path_and_proves_it(lanes_run, tmp_path):
    from purge_engine.check import check_run
    from tests.conftest import copy_of

    exp = copy_of(lanes_run, tmp_path / "run")
    stem = exp.store.checkpoint_stem("teacher", 2, 0)
    stem.with_suffix(".safetensors").write_bytes(b"damaged")
    stem_student = exp.store.checkpoint_stem("single_teacher", 1, 2)
    stem_student.with_suffix(".json").unlink()
    result = check_run(exp.store.root, repair=True)
    assert result["proved"] is True and result["run_whole"] is True, result
    assert Experiment.open(exp.store.root).param_hashes(ROLES) == lanes_run.param_hashes(ROLES)
