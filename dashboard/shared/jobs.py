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
from dataclasses import dataclass
from pathlib import Path

from purge_engine import Cancelled, Event, Progress, RunDamaged

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
    split: float | None = None  # when a forget job's full retrain began (progress.full_retrain): the request's end

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def request_seconds(self) -> float:
        """The job's own work: up to its full retrain, if it ran one (then the request had ended)."""
        return self.seconds if self.split is None else self.split - self.started

    @property
    def full_retrain_seconds(self) -> float:
        return 0.0 if self.split is None else (self.finished or time.time()) - self.split


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
        self.started, self.finished, self._split = time.time(), None, None
        self._thread = threading.Thread(target=self._run, name=f"purge-job-{job_id}", daemon=True)

    def start(self) -> Job:
        self._thread.start()
        return self

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self._progress.fold(event)
            if self._split is None and self._progress.full_retrain is not None:
                self._split = time.time()  # the request ended; its full retrain begins

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
                            self._result, self._error, self.started, self.finished, self._damaged, self._split)


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
