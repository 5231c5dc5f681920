"""RayExecutor on a real two-node Ray cluster on this machine (loopback only, token auth on both nodes):
bitwise equal to in-process training, a killed worker's chain retried without retraining finished
steps, forget and verify through Ray, and the errors a misconfigured cluster gives."""

import os
import secrets
import signal
import subprocess
import sys

import pytest

# Since 2.59 a local Ray head turns on token auth; both nodes and this driver must share one token,
# and Ray reads the mode when it is first imported, so it is set before the import.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
# Loopback only: otherwise ray.init(address="127.0.0.1:port") swaps in the machine's own address (found by
# a UDP probe towards a public IP), where the test cluster does not listen. With this switch off Ray
# resolves "this node" to 127.0.0.1.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")  # pinned in requirements.txt: present wherever `make test` ran

from purge_engine.config import PurgeConfig  # noqa: E402
from purge_engine.constituents import segments  # noqa: E402
from purge_engine.experiment import Experiment  # noqa: E402
from purge_engine.plan import METHODS  # noqa: E402
from tests.conftest import copy_of  # noqa: E402

CONFIG = PurgeConfig(n_teachers=4, n_students=2, teacher_slices=3, student_slices=2, epochs=3, batch_size=32,
                     teacher_fraction=0.6, student_data="disjoint", student_fraction=0.3)
ROLES = ["teacher", *METHODS]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def local_run(train_once):
    return train_once(CONFIG)


def on_ray(exp: Experiment, cluster) -> Experiment:
    from purge_engine.execution.ray_executor import RayExecutor

    exp.executor = RayExecutor(address=cluster.address)
    return exp


def test_a_run_trained_on_two_nodes_equals_the_in_process_run_with_a_worker_killed(cluster, local_run, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    exp = on_ray(Experiment.create(CONFIG, tmp_path / "ray"), cluster)
    events, killed = [], []

    def kill_first_worker(event):
        # Freeze the worker first, then kill it only if its chain is provably unfinished (its last
        # checkpoint is not on disk, so the task cannot have returned); else let it go and try the next.
        events.append(event)
        if getattr(event, "kind", "") == "trained" and event.role == "teacher" and not killed:
            pid = int(event.worker.rsplit(":", 1)[1])
            os.kill(pid, signal.SIGSTOP)
            last = len(exp.job("teacher", event.constituent).steps) - 1
            if exp.store.checkpoint_stem("teacher", event.constituent, last).with_suffix(".json").exists():
                os.kill(pid, signal.SIGCONT)
                return
            killed.append((event.constituent, event.step, pid))
            os.kill(pid, signal.SIGKILL)  # mid-chain: its next steps are not trained yet

    exp.train(on_event=kill_first_worker)
    assert killed, "every teacher chain had finished before its first step was reported: nothing to kill"
    constituent, step, pid = killed[0]
    trained = [e for e in events if e.kind == "trained" and e.role == "teacher" and e.constituent == constituent]
    assert [e.step for e in trained].count(step) == 1  # a finished step is never retrained
    reused = [e for e in events if e.kind == "reused" and e.role == "teacher" and e.constituent == constituent]
    assert reused and all(e.worker and not e.worker.endswith(f":{pid}") for e in reused)  # the retry reused it
    assert {e.worker.split(":")[0] for e in events if getattr(e, "worker", "")}  # workers named themselves
    assert exp.param_hashes(ROLES) == local_run.param_hashes(ROLES)  # every constituent, bit for bit
    assert exp.store.read_environment()["executor"] == "ray"
    # a task per teacher and per segment of each student chain; each student step trained once, by one of them
    parts = sum(len(segments(exp.plan, m, k)) for m in METHODS for k in range(exp.plan.n_students))
    assert len(exp.executor.timings) == exp.plan.n_teachers + parts > exp.plan.n_teachers + len(METHODS) * 2
    student_steps = [(e.role, e.constituent, e.step) for e in events if e.kind == "trained" and e.role != "teacher"]
    assert len(student_steps) == len(set(student_steps)) == sum(
        exp.plan.student_steps(k) for k in range(exp.plan.n_students)) * len(METHODS)


def test_forget_and_verify_through_ray_are_exact_and_keep_the_ledger(cluster, local_run, tmp_path):
    exp = on_ray(copy_of(local_run, tmp_path / "run"), cluster)
    report = exp.forget([int(exp.plan.teacher_shards[2][1][0])], score=False)
    assert report.cost_matches_prediction is True
    assert report.retrained["teacher"] == {"2": 1}
    verdict = exp.verify(affected_only=True)
    assert verdict["exact"] is True, verdict["reason"]
    assert exp.ledger.verify_chain()[0]
    assert [e["kind"] for e in exp.ledger.entries()] == ["started", "done", "verified"]


def test_lane_groups_as_ray_tasks_equal_in_process_lanes_verify_and_repair_exactly(cluster, tmp_path):
    """--executor ray --lanes W: a task per block of W chains, trained as one lane group, on either node."""
    import json

    from purge_engine.check import check_run
    from purge_engine.execution.lanes import LanesExecutor
    from purge_engine.execution.ray_executor import RayExecutor

    in_process = Experiment.create(CONFIG, tmp_path / "lanes")
    in_process.executor = LanesExecutor(2)
    in_process.train()
    exp = Experiment.create(CONFIG, tmp_path / "ray-lanes")
    exp.executor = RayExecutor(address=cluster.address, lanes=2)
    exp.train()
    assert exp.param_hashes(ROLES) == in_process.param_hashes(ROLES)
    assert len(exp.executor.timings) == 2 + len(METHODS)  # 4 teachers in 2 blocks, 2 students in 1 per method
    assert {t["constituent"] for t in exp.executor.timings if t["role"] == "teacher"} == {0, 2}
    sidecar = json.loads(exp.store.checkpoint_stem("purge", 1, 0).with_suffix(".json").read_text())
    assert sidecar["environment"]["path"] == "lanes:2:v2" and exp.store.read_environment()["lanes"] == 2
    report = exp.forget([int(exp.plan.teacher_shards[3][0][0])], score=False)
    assert report.cost_matches_prediction is True and report.retrained["teacher"] == {"3": 0}
    verdict = exp.verify(affected_only=True)
    assert verdict["exact"] is True, verdict["reason"]
    exp.store.checkpoint_stem("teacher", 3, 1).with_suffix(".safetensors").unlink()
    repaired = check_run(exp.store.root, repair=True)  # rebuilt in process on the recorded lanes path
    assert repaired["proved"] and repaired["run_whole"]


def test_a_cancelled_ray_job_stops_at_a_step_boundary_and_resumes_to_the_same_bits(cluster, local_run, tmp_path):
    from purge_engine.events import Cancelled

    exp = on_ray(Experiment.create(CONFIG, tmp_path / "cancel"), cluster)
    seen = []

    def after_first_step() -> bool:
        return any(getattr(e, "kind", "") == "trained" for e in seen)

    with pytest.raises(Cancelled):
        exp.train(on_event=seen.append, should_stop=after_first_step)
    total = sum(len(exp.job(role, c).steps) for role in ROLES for c in range(CONFIG.n_teachers if role == "teacher"
                                                                             else CONFIG.n_students))
    assert 1 <= len([e for e in seen if getattr(e, "kind", "") == "trained"]) < total
    assert not list((tmp_path / "cancel").glob(".stop-*"))  # the flag is removed with the job
    exp.train()  # resumes from the checkpoints the cancelled job wrote
    assert exp.param_hashes(ROLES) == local_run.param_hashes(ROLES)


def test_a_sweep_on_ray_measures_the_same_work_as_its_plan(cluster, tmp_path):
    from purge_engine.execution.ray_executor import RayExecutor
    from purge_engine.sweep import SWEEP_BASE, SweepGrid, run_sweep

    grid = SweepGrid(SWEEP_BASE.replace(epochs=1), n_teachers=(2,), n_students=(2,), student_slices=(1,), requests=1)
    results = run_sweep(grid, tmp_path, executor=RayExecutor(address=cluster.address))
    assert results["executor"]["executor"] == "ray" and results["executor"]["nodes"] == 2
    [record] = results["layouts"]
    for request in record["requests"]:
        assert {r: request["measured"][r]["sample_steps"] for r in ROLES} == request["predicted"]


def test_a_run_directory_the_workers_cannot_see_is_a_clear_error(cluster, local_run, tmp_path, monkeypatch):
    from purge_engine.execution.chains import schedule

    exp = on_ray(Experiment.create(CONFIG.replace(seed=5), tmp_path / "hidden"), cluster)
    monkeypatch.setattr(exp.store, "root", tmp_path / "not-mounted")  # what the driver tells the workers
    with pytest.raises(RuntimeError, match="not visible from Ray worker"):
        exp.executor.train(exp, schedule(exp.plan, ["purge"], by_segment=True), lambda e: None, lambda: False)


def test_a_worker_with_another_torch_is_refused(cluster, tmp_path, monkeypatch):
    import torch

    exp = on_ray(Experiment.create(CONFIG.replace(seed=6), tmp_path / "other-torch"), cluster)
    monkeypatch.setattr(torch, "__version__", "0.0.0-driver")  # what the driver announces to its workers
    with pytest.raises(RuntimeError, match="torch .* but the driver runs torch 0.0.0-driver"):
        exp.train()
    monkeypatch.undo()
    assert not list((tmp_path / "other-torch").rglob("*.safetensors"))


def test_an_unreachable_cluster_is_a_clear_error_and_stores_nothing(tmp_path):
    script = (
        "import sys\n"
        "from purge_engine.cli import main\n"
        f"sys.exit(main(['train', '--run', {str(tmp_path / 'r')!r}, '--teachers', '2', '--students', '1',"
        " '--epochs', '1', '--executor', 'ray', '--ray-address', '127.0.0.1:1']))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "ray_address" in result.stderr and "127.0.0.1:1" in result.stderr
    assert not (tmp_path / "r").exists()


def test_the_local_executor_never_imports_ray(tmp_path):
    script = (
        "import sys\n"
        "from purge_engine.cli import main\n"
        f"main(['train', '--run', {str(tmp_path / 'r')!r}, '--teachers', '2', '--students', '1', '--epochs', '1',"
        " '--json'])\n"
        "print('ray' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_asking_for_another_cluster_than_the_one_joined_is_a_clear_error(cluster, monkeypatch):
    from purge_engine.execution import ray_executor

    monkeypatch.setattr(ray_executor, "_JOINED", cluster.address)
    ray_executor.RayExecutor(address=cluster.address).connect()  # the same one: fine
    with pytest.raises(ValueError, match="ray_address: got '127.0.0.1:1', but this process has joined"):
        ray_executor.RayExecutor(address="127.0.0.1:1").connect()


def test_one_mailbox_serves_every_train_call_and_drops_a_closed_calls_stragglers(cluster):
    """The driver's Control actor outlives a train call (no process started per call); events are kept
    apart by call, and a task of a cancelled call posting late reaches no later call."""
    from purge_engine.execution.ray_executor import _control

    control = _control()
    assert _control() is control
    ray.get([control.open.remote("first"), control.open.remote("second")])
    ray.get([control.post.remote("first", "StepEvent", {"n": 1}), control.post.remote("second", "StepEvent", {"n": 2})])
    assert ray.get(control.drain.remote("first")) == [("StepEvent", {"n": 1})]
    assert ray.get(control.drain.remote("first")) == []
    ray.get(control.drain.remote("first", close=True))
    ray.get(control.post.remote("first", "StepEvent", {"n": 3}))  # a straggler of the closed call
    assert ray.get(control.drain.remote("first")) == []
    ray.get(control.post.remote("first", "StepEvent", {"n": 4}))  # draining a closed call does not reopen it
    assert ray.get(control.drain.remote("first")) == []
    assert ray.get(control.drain.remote("second", close=True)) == [("StepEvent", {"n": 2})]
