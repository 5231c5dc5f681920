"""A real trained run for the page tests: tiny layout, trained once per session, with two forget
requests served (a teacher-side and a student-side one), under a private runs directory."""

import shutil
import threading
import time
from dataclasses import dataclass, field, replace

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.shared.state import RUNS_DIR_ENV
from purge_engine.events import Cancelled, StepEvent
from purge_engine.execution import choice as execution
from purge_engine.execution.executors import LocalExecutor
from purge_engine.experiment import Experiment
from tests.dashboard import APP

RUN_NAME = "tiny"
POLL_LIMIT_S = 300  # a job on a busy 2-core machine
FAKE_WORKER = "node-b:4242"  # the worker name a FakeExecutor stamps on every step, as a Ray worker would
FAKE_CLUSTER = {"nodes": 2, "cpus": 6, "gpus": 1}


@dataclass
class FakeExecutors:
    """What the dashboard asked of make_executor, and what the executors it got did."""

    made: list = field(default_factory=list)  # (name, ray_address) per make_executor call
    trained: list = field(default_factory=list)  # (name, run directory name) per train call
    connected: list = field(default_factory=list)  # the thread each connect() ran on
    lanes: list = field(default_factory=list)  # the lanes argument per make_executor call
    gate: threading.Event = field(default_factory=threading.Event)  # train waits until it is set


class FakeExecutor(LocalExecutor):
    """Trains in this process as LocalExecutor does (same bits, same path), once the gate is open,
    stamping FAKE_WORKER on every step event; honours should_stop while it waits, as RayExecutor
    does at step boundaries. No Ray anywhere."""

    def __init__(self, chosen: str, address: str | None, fakes: FakeExecutors):
        self.chosen, self.address, self.fakes = chosen, address, fakes

    def connect(self) -> None:
        self.fakes.connected.append(threading.current_thread().name)

    def train(self, run, methods, on_event, should_stop):
        while not self.fakes.gate.wait(0.02):
            if should_stop():
                raise Cancelled("cancelled while waiting for the gate")
        self.fakes.trained.append((self.chosen, run.store.root.name))

        def stamped(event):
            on_event(replace(event, worker=FAKE_WORKER) if isinstance(event, StepEvent) else event)

        return super().train(run, methods, stamped, should_stop)

    def describe(self) -> dict:
        if self.chosen != "ray":
            return super().describe()
        return {"executor": "ray", "workers": FAKE_CLUSTER["cpus"], **FAKE_CLUSTER, "address": self.address or "local"}


@pytest.fixture
def fake_executors(monkeypatch):
    """make_executor replaced by one that records its arguments and returns a FakeExecutor (gate open)."""
    fakes = FakeExecutors()
    fakes.gate.set()

    def make_executor(name="local", ray_address=None, workers=None, lanes=None):
        fakes.made.append((name, ray_address))
        fakes.lanes.append(lanes)
        return FakeExecutor(name, ray_address, fakes)

    monkeypatch.setattr(execution, "make_executor", make_executor)
    yield fakes
    fakes.gate.set()  # a job still waiting finishes on its own


@pytest.fixture(scope="session")
def trained_runs_dir(tmp_path_factory, tiny_config):
    """A runs directory holding one run, RUN_NAME: trained, then two requests served."""
    root = tmp_path_factory.mktemp("runs")
    exp = Experiment.create(tiny_config.replace(student_data="disjoint", student_fraction=0.5), root / RUN_NAME)
    exp.train()
    where = exp.plan.locations()
    teacher_only = next(i for i in range(exp.plan.n_pool) if where["teacher"][i] >= 0 > where["student"][i])
    student_only = next(i for i in range(exp.plan.n_pool) if where["student"][i] >= 0 > where["teacher"][i])
    exp.forget([teacher_only])
    exp.forget([student_only])
    return root


@pytest.fixture
def runs_dir(trained_runs_dir, tmp_path, monkeypatch):
    """A private copy of the trained runs directory (a test may forget more), set as PURGE_RUNS_DIR."""
    root = tmp_path / "runs"
    shutil.copytree(trained_runs_dir, root)
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    return root


@pytest.fixture
def empty_runs_dir(tmp_path, monkeypatch):
    root = tmp_path / "empty-runs"
    monkeypatch.setenv(RUNS_DIR_ENV, str(root))
    return root


def app_on(page: str, run: str | None = RUN_NAME) -> AppTest:
    """The dashboard opened on `page` (its url path, "" for Setup) with ?run=<run>, after its first run."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    if run:
        at.query_params["run"] = run
    if page:
        at.switch_page(f"app_pages/{page}.py")
    return at.run()


def run_until(at: AppTest, done, limit: float = POLL_LIMIT_S, idle: bool = True) -> AppTest:
    """Rerun the page, as its polling fragment would, until done(at) holds (the job runs on a
    worker thread meanwhile; AppTest never fires run_every). With idle (the default), also until the
    page was drawn after every job had ended: a job's results reach its run directory a moment before
    the job is marked finished, and a page drawn in between still shows it running (buttons disabled).
    idle=False waits on a job meant to keep running."""
    from dashboard.shared import state

    deadline = time.monotonic() + limit
    drawn_idle = not idle
    while not (drawn_idle and done(at)):
        assert time.monotonic() < deadline, "the job did not finish in time"
        assert not at.exception, at.exception
        time.sleep(0.3)
        drawn_idle = not idle or state.registry().idle()
        at.run()
    return at


@pytest.fixture(autouse=True)
def no_job_outlives_its_test():
    """Jobs a page test started are cancelled and joined after it: a worker thread left training would
    share this process (and torch's process-wide thread count) with the tests that follow."""
    yield
    from dashboard.shared import state

    state.registry().shutdown()
