"""The one fold of a job's progress events, read by the CLI's bar and the dashboard's live grid.

A job (recipes.py) announces its total first (events.TotalEvent), then reports its steps and labels.
`Progress.fold` turns them into what both clients draw: sample-steps done against the total, the grid
of constituents x steps with each cell's state, the worker that trained each step, the phase, the last
thing that happened, and the live estimate of the seconds left (eta.py).

A forget job asked to retrain everything from scratch as well runs that full retrain after the request;
its events (PhaseEvent FULL_RETRAIN, then its own TotalEvent) fold into `Progress.full_retrain`, a
Progress of its own, so the request's grid keeps what the request kept and each has its own bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from purge_engine.events import FULL_RETRAIN, Event, LabelEvent, PhaseEvent, StepEvent, TotalEvent

# Cell states of the constituents x steps grid, in the order a step passes through them.
PENDING = "pending"  # not reached yet (in training: will train; in a forget: not yet checked)
KEPT = "kept"  # its checkpoint already matches the plan: reused untouched
RESTORED = "restored"  # the checkpoint a retrain starts from
RETRAINING = "retraining"  # being trained now
DONE = "done"  # trained and checkpointed
CELL_OF_EVENT = {"reused": KEPT, "restored": RESTORED, "training": RETRAINING, "trained": DONE}


@dataclass
class Progress:
    """What the events of one job said so far: grid cells, sample-steps done, the current phase.

    cells[(role, constituent)] is a list of cell states, one per step (grown as events arrive);
    workers[(role, constituent)][step] is the worker ("host:pid") that trained the step, for steps an
    executor ran outside this process (StepEvent.worker is empty in-process).
    """

    total_sample_steps: int = 0  # announced by the job's TotalEvent; 0 while unknown
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
    full_retrain: Progress | None = None  # the full retrain after a forget request: every later event goes there

    def fold(self, event: Event) -> None:
        if self.full_retrain is not None:  # the request is over: it is never painted over
            self.full_retrain.fold(event)
            return
        if isinstance(event, PhaseEvent) and event.name == FULL_RETRAIN:
            self.full_retrain = Progress(phase=event.name, last=event.detail or "starting")
            return
        self.events += 1
        if isinstance(event, StepEvent):
            self._fold_step(event)
        elif isinstance(event, TotalEvent):
            self.total_sample_steps, self.count_reused = event.sample_steps, event.counts_reused
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
        """Seconds to go at the rate this job has trained so far; None before it has a rate. Reused steps
        cost no time, so the rate is measured on the steps this job trained itself."""
        if not self.total_sample_steps:
            return None
        return seconds_left(self.total_sample_steps - self.reused_sample_steps, self.trained_sample_steps, elapsed)

    @property
    def fraction(self) -> float:
        """Share of the predicted sample-steps done, in [0, 1]."""
        if self.total_sample_steps <= 0:
            return 0.0
        return min(1.0, self.sample_steps / self.total_sample_steps)

    @property
    def active(self) -> Progress:
        """The fold the job's events go to now: the full retrain's once it has begun, else this one."""
        return self if self.full_retrain is None else self.full_retrain

    def copy(self) -> Progress:
        return replace(self, cells={key: list(row) for key, row in self.cells.items()},
                       workers={key: dict(steps) for key, steps in self.workers.items()},
                       full_retrain=None if self.full_retrain is None else self.full_retrain.copy())


def seconds_left(total: int, done: int, elapsed: float) -> float | None:
    """Seconds to go for `total` sample-steps after `done` took `elapsed` seconds; None without a rate."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, (total - done) * elapsed / done)
