"""The job registry: engine work on worker threads, progress folded from real engine events,
cooperative cancel, one job per run."""

import threading

import pytest

from dashboard.shared.jobs import CANCELLED, FAILED, SUCCEEDED, JobBusy, JobRegistry, connect
from purge_engine.events import FULL_RETRAIN, LabelEvent, PhaseEvent, StepEvent, TotalEvent
from purge_engine.experiment import Experiment
from purge_engine.plan import METHODS, predicted_cost, retrain_scope, training_cost
from purge_engine.progress import DONE, KEPT, PENDING, RESTORED, Progress


def finished(job, timeout=300):
    job.join(timeout)
    snap = job.snapshot()
    assert not snap.running, "job did not finish in time"
    return snap


def test_progress_folds_step_events_into_cells_and_sample_steps():
    p = Progress(total_sample_steps=100)
    p.fold(StepEvent("reused", "teacher", 0, 0, 2, samples=10, epochs=1))
    p.fold(StepEvent("restored", "teacher", 0, 0, 2))
    p.fold(StepEvent("training", "teacher", 0, 1, 2, samples=20, epochs=2))
    assert p.cells[("teacher", 0)] == [RESTORED, "retraining"]
    p.fold(StepEvent("trained", "teacher", 0, 1, 2, samples=20, epochs=2))
    p.fold(LabelEvent("labelled", "purge", 0, 0, 0, (0,), 5))
    p.fold(LabelEvent("label-reused", "purge", 0, 0, 1, (0,), 5))
    p.fold(PhaseEvent("phase", "done"))
    assert p.cells[("teacher", 0)] == [RESTORED, DONE]
    assert p.sample_steps == 40 and p.fraction == 0.4  # the reused step is not work done by this job
    assert (p.labelled, p.label_reused, p.phase, p.events) == (1, 1, "done", 7)
    assert p.seconds_left(elapsed=2.0) == 3.0  # 40 sample-steps took 2 s: 60 to go at 20 per second
    counting = Progress(total_sample_steps=50, count_reused=True)
    counting.fold(StepEvent("reused", "purge", 1, 0, 3, samples=10, epochs=5))
    assert counting.fraction == 1.0 and counting.cells[("purge", 1)] == [KEPT, PENDING, PENDING]
    assert counting.seconds_left(elapsed=1.0) is None  # a reused step costs no time: no rate yet


def test_a_full_retrain_after_the_request_is_a_second_fold_with_its_own_clock():
    registry = JobRegistry()

    def work(on_event, should_stop):
        on_event(StepEvent("reused", "teacher", 0, 0, 2, 10, 1))
        on_event(StepEvent("trained", "teacher", 1, 1, 2, 10, 1))
        on_event(PhaseEvent("phase", FULL_RETRAIN))
        on_event(TotalEvent("total", 40, counts_reused=True, what=FULL_RETRAIN))
        on_event(StepEvent("trained", "teacher", 0, 0, 2, 20, 2))
        return 1

    snap = finished(registry.start("/tmp/run-full", "forget", "f", work, total_sample_steps=10))
    assert snap.progress.cells == {("teacher", 0): [KEPT, PENDING], ("teacher", 1): [PENDING, DONE]}
    assert snap.progress.fraction == 1.0 and snap.progress.full_retrain.fraction == 1.0
    assert snap.progress.full_retrain.cells == {("teacher", 0): [DONE, PENDING]}
    assert snap.split is not None and snap.request_seconds + snap.full_retrain_seconds == pytest.approx(snap.seconds)


def test_snapshot_is_a_copy():
    registry = JobRegistry()
    gate = threading.Event()

    def work(on_event, should_stop):
        on_event(StepEvent("training", "teacher", 0, 0, 1, 1, 1))
        gate.wait(30)
        on_event(StepEvent("trained", "teacher", 0, 0, 1, 1, 1))
        return "result"

    job = registry.start("/tmp/run-a", "train", "t", work, total_sample_steps=1)
    while not job.snapshot().progress.cells:
        gate.wait(0.01)
    before = job.snapshot()
    gate.set()
    after = finished(job)
    assert before.progress.cells[("teacher", 0)] == ["retraining"] and before.running
    assert after.progress.cells[("teacher", 0)] == [DONE]
    assert after.status == SUCCEEDED and after.result == "result" and after.progress.fraction == 1.0


def test_one_job_per_run_and_cancel_between_steps(tmp_path, tiny_config):
    registry = JobRegistry()
    exp = Experiment.create(tiny_config, tmp_path / "run")
    started = threading.Event()

    def work(on_event, should_stop):
        def watch(event):
            on_event(event)
            started.set()
        exp.train(on_event=watch, should_stop=should_stop)

    job = registry.start(exp.store.root, "train", "Training", work)
    started.wait(60)
    with pytest.raises(JobBusy, match="one job per run"):
        registry.start(exp.store.root, "train", "again", work)
    other = registry.start(tmp_path / "other-run", "train", "other", lambda on_event, should_stop: 1)
    assert finished(other).result == 1  # another run is not blocked
    job.cancel()
    snap = finished(job)
    assert snap.status == CANCELLED and "resumes" in snap.error
    assert registry.running(exp.store.root) is None
    assert registry.latest(exp.store.root, kind="train") is job
    # what the cancelled job trained is kept: a second job resumes from it
    resumed = registry.start(exp.store.root, "train", "Resume", lambda on_event, should_stop: exp.train(on_event))
    assert finished(resumed).status == SUCCEEDED
    kept = sum(row.count(KEPT) + row.count(RESTORED) for row in resumed.snapshot().progress.cells.values())
    assert kept == sum(row.count(DONE) for row in snap.progress.cells.values())


def test_engine_errors_become_the_jobs_message():
    registry = JobRegistry()

    def work(on_event, should_stop):
        raise ValueError("sample ids: got 99999, must be below 1437")

    snap = finished(registry.start("/tmp/run-b", "forget", "bad", work))
    assert snap.status == FAILED and snap.error == "sample ids: got 99999, must be below 1437"


def test_forget_job_progress_reaches_the_predicted_cost(tmp_path, tiny_config):
    """A real forget request on a worker thread: the grid shows kept and retrained steps, and the
    sample-steps counted from events equal the plan's prediction."""
    exp = Experiment.create(tiny_config, tmp_path / "run")
    exp.train()
    sample = int(exp.plan.teacher_shards[1][1][0])
    scope = retrain_scope(exp.plan, [sample])
    cost = predicted_cost(exp.plan, scope)
    total = sum(cost[k]["sample_steps"] for k in ("teacher", *METHODS))
    registry = JobRegistry()
    job = registry.start(exp.store.root, "forget", "Forget", lambda on_event, should_stop: Experiment.open(
        exp.store.root).forget([sample], on_event=on_event, should_stop=should_stop).request_id, total)
    snap = finished(job)
    assert snap.status == SUCCEEDED and snap.result == 1
    assert snap.progress.sample_steps == total and snap.progress.fraction == 1.0
    assert snap.progress.cells[("teacher", 1)] == [RESTORED, DONE]  # slice 2 held the sample: step 1 kept
    assert all(state == KEPT for state in snap.progress.cells[("teacher", 0)])
    assert training_cost(exp.plan)["purge"]["sample_steps"] > cost["purge"]["sample_steps"]


def test_shutdown_cancels_running_jobs(tmp_path, tiny_config):
    registry = JobRegistry()
    exp = Experiment.create(tiny_config, tmp_path / "run")
    job = registry.start(exp.store.root, "train", "Training", lambda on_event, should_stop: exp.train(
        on_event, should_stop))
    registry.shutdown()
    assert not job.snapshot().running


def test_a_constituent_seen_again_with_more_steps_grows_its_row():
    p = Progress()
    p.fold(StepEvent("trained", "purge", 0, 1, 2, samples=1, epochs=1))
    p.fold(StepEvent("training", "purge", 0, 3, 4, samples=1, epochs=1))
    assert p.cells[("purge", 0)] == [PENDING, DONE, PENDING, "retraining"]


def test_progress_keeps_the_worker_of_each_step_an_executor_ran_elsewhere():
    p = Progress()
    p.fold(StepEvent("reused", "teacher", 0, 0, 3, worker="node-a:11"))  # reused: not trained anywhere
    p.fold(StepEvent("training", "teacher", 0, 1, 3, worker="node-a:11"))
    p.fold(StepEvent("trained", "teacher", 0, 2, 3, samples=1, epochs=1, worker="node-b:22"))
    p.fold(StepEvent("trained", "purge", 0, 0, 1, samples=1, epochs=1))  # in-process: no worker
    assert p.workers == {("teacher", 0): {1: "node-a:11", 2: "node-b:22"}}
    copy = p.copy()
    p.fold(StepEvent("trained", "teacher", 0, 1, 3, samples=1, epochs=1, worker="node-c:33"))
    assert copy.workers[("teacher", 0)][1] == "node-a:11"  # a snapshot does not follow later events


def test_executors_connect_on_one_thread_that_outlives_the_jobs():
    """Ray's local cluster dies with the thread that started it: every job joins from the same one."""
    threads = []

    class Clustered:
        def connect(self):
            threads.append(threading.current_thread())

    registry = JobRegistry()
    for run in ("/tmp/run-c", "/tmp/run-d"):
        finished(registry.start(run, "train", "t", lambda on_event, should_stop: connect(Clustered())))
    connect(None)  # the run's own executor, chosen when the run opens: nothing to join yet
    assert len(threads) == 2 and threads[0] is threads[1] and threads[0].is_alive()
