"""Executors: how a run's constituent chains get trained (DESIGN section 3).

An executor implements one method, `train(run, tasks, on_event, should_stop) -> {role: Cost}`: bring
the chains the tasks name (chains.schedule: teachers first, then each method's students) up to date
with the run's plan. `LocalExecutor` trains them one after another in this process; `LanesExecutor`
(lanes.py) W chains of a role at once as lanes of one batched model; `RayExecutor` (ray_executor.py)
as tasks on a cluster. Each records its execution path in every checkpoint: the path decides the
bits, so which executor serves a run is decided in one place, above them all (execution.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from purge_engine.events import EventCallback
from purge_engine.execution.chains import Bench, ChainTask, by_role, phase
from purge_engine.training import Cost, train_constituent

# The execution path decides the bits (DESIGN section 6): the one-at-a-time loop gives the same
# parameters in this process and in a Ray worker, so both record the path "loop"; lanes would not.
LOOP_PATH = "loop"


class Executor(Protocol):
    """What every executor is: a name, the execution path it records, and `train`, the one method an
    executor must implement. The rest have defaults an executor inherits by subclassing: `connect` joins
    a cluster where the executor has one (before anything is stored); `describe` says where it runs;
    `for_run` lets an executor left to choose a setting take the run's recorded one (lanes' W)."""

    name = "executor"
    path = LOOP_PATH
    by_segment = False  # True: it wants student chains cut into segments (chains.schedule)

    def train(self, run, tasks: Sequence[ChainTask], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        raise NotImplementedError

    def connect(self) -> None:
        """Nothing to join in this process."""

    def describe(self) -> dict:
        return {"executor": self.name, "workers": 1, "path": self.path}

    def for_run(self, recorded_path: str | None) -> Executor:
        return self


class LocalExecutor(Executor):
    """Every chain in this process, one after another, with the run's thread count."""

    name = "local"

    def train(self, run, tasks: Sequence[ChainTask], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        bench, costs = Bench(run, on_event), {}
        for role, group in by_role(tasks):
            on_event(phase(role))
            cost = costs.setdefault(role, Cost())
            for task in group:
                cost.add(train_constituent(bench.chain(task), run.store, run.config.batch_size, run.config.seed,
                                           run.device, on_event, should_stop))
        return bench.settle(costs)
