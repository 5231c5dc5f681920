"""Background jobs: engine calls on worker threads, with progress the pages poll (DESIGN section 11).

A page script is rerun on every click, so long work never runs inside it. A page starts a job in
the process-wide JobRegistry (made once per server by `state.registry()`); the worker thread calls
the engine with an event callback that folds each typed event into a Progress; the page polls
`job.snapshot()` from a fragment. Nothing here calls st.*: worker threads must never touch the page.

One job per run at a time (a run has one writer); the registry refuses a second with JobBusy.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from purge_engine.events import Cancelled, Event, LabelEvent, PhaseEvent, StepEvent
from purge_engine.files import RunDamaged

# Cell states of the constituents x steps grid, in the order a step passes through them.
PENDING = "pending"  # not reached yet (in training: will train; in a forget: not yet checked)
KEPT = "kept"  # its checkpoint already matches the plan: reused untouched
RESTORED = "restored"  # the checkpoint a retrain starts from
RETRAINING = "retraining"  # being trained now
DONE = "done"  # trained and checkpointed
CELL_OF_EVENT = {"reused": KEPT, "restored": RESTORED, "training": RETRAINING, "trained": DONE}

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"

# Ray starts a local cluster's processes as children of the calling *thread*, with a parent-death
# signal: started from a job's worker thread, the cluster dies when that job ends, and the next Ray
# call hangs for a minute, then terminates the whole server. So executors connect on this one thread,
# which lives as long as the process (made on first use: nothing starts at import).
_CONNECTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="purge-executor-connect")


def connect(executor) -> None:
    """Join or start the executor's cluster, if it has one (RayExecutor.connect), from the
    process-lifetime thread; call it from a job's worker thread, before training. None: the run's own."""
    if executor is not None:
        _CONNECTOR.submit(executor.connect).result()


class JobBusy(RuntimeError):
    """A job is already running on this run."""


@dataclass
class Progress:
    """What the events of one job said so far: grid cells, sample-steps done, the current phase.

    cells[(role, constituent)] is a list of cell states, one per step (grown as events arrive);
    workers[(role, constituent)][step] is the worker ("host:pid") that trained the step, for steps an
    executor ran outside this process (StepEvent.worker is empty in-process).
    """

    total_sample_steps: int = 0  # predicted by the plan; 0 when unknown
    count_reused: bool = False  # training: a reused step counts as done (the total is the whole training)
    sample_steps: int = 0
    phase: str = ""
    cells: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    workers: dict[tuple[str, int], dict[int, str]] = field(default_factory=dict)
    labelled: int = 0  # slices of soft labels computed
    label_reused: int = 0
    last: str = "starting"
    events: int = 0
    trained_sample_steps: int = 0  # trained by this job itself (its rate gives the live estimate)
    reused_sample_steps: int = 0  # counted toward a training's total without costing time

    def fold(self, event: Event) -> None:
        self.events += 1
        if isinstance(event, StepEvent):
            self._fold_step(event)
        elif isinstance(event, LabelEvent):
            if event.kind == "labelled":
                self.labelled += 1
                self.last = (f"soft labels: {event.method} student {event.student_id + 1}, chunk "
                             f"{event.chunk_id + 1}, slice {event.slice_id + 1}")
            else:
                self.label_reused += 1
        elif isinstance(event, PhaseEvent):
            self.phase = event.name
            if event.name == "waiting":  # another process holds the run: say for what
                self.last = event.detail

    def _fold_step(self, event: StepEvent) -> None:
        row = self.cells.setdefault((event.role, event.constituent), [])
        row.extend([PENDING] * (event.n_steps - len(row)))  # a later run of the same constituent may be longer
        row[event.step] = CELL_OF_EVENT[event.kind]
        if event.worker and event.kind in ("training", "trained"):
            self.workers.setdefault((event.role, event.constituent), {})[event.step] = event.worker
        if event.kind == "training":
            self.last = f"{event.role} {event.constituent + 1}: training step {event.step + 1} of {event.n_steps}"
        if event.kind == "trained" or (event.kind == "reused" and self.count_reused):
            self.sample_steps += event.samples * event.epochs
        if event.kind == "trained":
            self.trained_sample_steps += event.samples * event.epochs
        elif event.kind == "reused" and self.count_reused:
            self.reused_sample_steps += event.samples * event.epochs

    def seconds_left(self, elapsed: float) -> float | None:
        """Seconds to go at the rate this job has trained so far (eta.LiveEta); None before it has a rate."""
        from purge_engine.eta import seconds_left

        if not self.total_sample_steps:
            return None
        return seconds_left(self.total_sample_steps - self.reused_sample_steps, self.trained_sample_steps, elapsed)

    @property
    def fraction(self) -> float:
        """Share of the predicted sample-steps done, in [0, 1]."""
        if self.total_sample_steps <= 0:
            return 0.0
        return min(1.0, self.sample_steps / self.total_sample_steps)

    def copy(self) -> Progress:
        return replace(self, cells={key: list(row) for key, row in self.cells.items()},
                       workers={key: dict(steps) for key, steps in self.workers.items()})


@dataclass
class Snapshot:
    """A consistent copy of a job's state for one page rerun."""

    job_id: str
    run_dir: str
    kind: str
    title: str
    status: str
    progress: Progress
    result: object
    error: str | None
    started: float
    finished: float | None
    damaged: bool = False  # failed on a damaged file of the run (RunDamaged): check --repair rebuilds it

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started


class Job:
    """One engine call on a worker thread. work(on_event, should_stop) returns the job's result."""

    def __init__(self, job_id: str, run_dir: Path, kind: str, title: str,
                 work: Callable[[Callable[[Event], None], Callable[[], bool]], object], total_sample_steps: int,
                 count_reused: bool = False):
        self.job_id, self.run_dir, self.kind, self.title = job_id, str(run_dir), kind, title
        self._work = work
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._progress = Progress(total_sample_steps=total_sample_steps, count_reused=count_reused)
        self._status, self._result, self._error, self._damaged = RUNNING, None, None, False
        self.started, self.finished = time.time(), None
        self._thread = threading.Thread(target=self._run, name=f"purge-job-{job_id}", daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self._progress.fold(event)

    def _run(self) -> None:
        try:
            result = self._work(self._on_event, self._stop.is_set)
            self._finish(SUCCEEDED, result=result)
        except Cancelled:
            self._finish(CANCELLED, error="Cancelled at a step boundary: the work finished so far is kept, so "
                                          "starting again resumes from it.")
        except (ValueError, RuntimeError, OSError) as err:  # the engine's messages name the field at fault
            self._damaged = isinstance(err, RunDamaged)
            self._finish(FAILED, error=str(err) or type(err).__name__)
        except Exception as err:  # noqa: BLE001 - a worker thread must report, never die silently
            traceback.print_exc()
            self._finish(FAILED, error=f"{type(err).__name__}: {err}")

    def _finish(self, status: str, result: object = None, error: str | None = None) -> None:
        with self._lock:
            self._status, self._result, self._error, self.finished = status, result, error, time.time()

    def cancel(self) -> None:
        """Ask the worker to stop at the next step boundary (cooperative: finished steps are kept)."""
        self._stop.set()

    @property
    def cancelling(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self.job_id, self.run_dir, self.kind, self.title, self._status, self._progress.copy(),
                            self._result, self._error, self.started, self.finished, self._damaged)


class JobRegistry:
    """Every job of this server process, by id; at most one running job per run directory."""

    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, run_dir: Path | str, kind: str, title: str, work, total_sample_steps: int = 0,
              count_reused: bool = False) -> Job:
        run_dir = Path(run_dir).resolve()
        with self._lock:
            busy = self.running(run_dir)
            if busy is not None:
                raise JobBusy(f"run {run_dir.name}: {busy.title} is still running (job {busy.job_id}); "
                              "one job per run at a time")
            job = Job(f"{next(self._ids)}-{int(time.time())}", run_dir, kind, title, work, total_sample_steps,
                      count_reused)
            self._jobs[job.job_id] = job
        return job.start()

    def get(self, job_id: str | None) -> Job | None:
        return self._jobs.get(job_id) if job_id else None

    def running(self, run_dir: Path | str) -> Job | None:
        """The job running on run_dir, if any."""
        run_dir = str(Path(run_dir).resolve())
        return next((j for j in self._jobs.values() if j.run_dir == run_dir and j.snapshot().running), None)

    def idle(self) -> bool:
        """No job of this process is running, on any run."""
        return not any(j.snapshot().running for j in list(self._jobs.values()))

    def latest(self, run_dir: Path | str, kind: str | None = None) -> Job | None:
        """The most recently started job on run_dir (of the given kind)."""
        run_dir = str(Path(run_dir).resolve())
        jobs = [j for j in self._jobs.values() if j.run_dir == run_dir and (kind is None or j.kind == kind)]
        return max(jobs, key=lambda j: j.started, default=None)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait for its worker (on_release of the cached registry)."""
        for job in list(self._jobs.values()):
            job.cancel()
        for job in list(self._jobs.values()):
            job.join(timeout)
