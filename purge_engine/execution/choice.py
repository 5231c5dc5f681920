"""Which executor serves a run: decided here, once, for every client (DESIGN section 3).

The execution path (the loop, or lanes of width W) decides a checkpoint's bits and is recorded in
every sidecar, so a run's history must stay on one path: a request retrained on another would leave
a chain that no reference can reproduce. The rule:
- a trained run is served on its recorded path: left unasked, the executor for that path; asked for
  an executor on another path, refused with a sentence, unless `switch` asks to retrain the whole
  run on the new one (every step is then retrained: a step is reused only on its own path);
- a new run gets lanes on a GPU and the loop on a CPU, where lanes are measured slower to serve a
  forget request on both built-in layouts (benchmarks/bench_lanes.py).
"""

from __future__ import annotations

import torch

from purge_engine.config import EXECUTORS
from purge_engine.execution.executors import LOOP_PATH, Executor, LocalExecutor
from purge_engine.execution.lanes import LanesExecutor, lanes_path, lanes_width
from purge_engine.rundir.store import RunStore


def make_executor(name: str | None = None, ray_address: str | None = None, workers: int | None = None,
                  lanes: int | None = None) -> Executor | None:
    """The executor a CLI flag or a dashboard choice names: "local", "lanes" (W = `lanes`; None: the
    run's own W, else chosen for the device), "ray" (with `lanes`, each task a lane group), or None and
    "auto": the run's own path (None is returned: `choose` decides per run). Ray is imported only here."""
    if name in (None, "auto"):
        return None
    if name == "local":
        return LocalExecutor()
    if name == "lanes":
        return LanesExecutor(lanes)
    if name == "ray":
        from purge_engine.execution.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, workers=workers, lanes=lanes)
    raise ValueError(f"executor: got {name!r}, must be one of {', '.join(EXECUTORS)}")


def recorded_path(store: RunStore) -> str | None:
    """The path a run's checkpoints were trained on: its execution record's, or (a run recorded before
    paths were) the first checkpoint sidecar's; None before its first training."""
    record = store.read_environment()
    if record.get("path"):
        return record["path"]
    if record.get("lanes"):
        return lanes_path(int(record["lanes"]))
    return store.first_checkpoint_path() if record else None


def executor_on(path: str) -> Executor | None:
    """The in-process executor that trains on `path`; None when this version has none (other kernels)."""
    if path == LOOP_PATH:
        return LocalExecutor()
    width = lanes_width(path)
    return None if width is None else LanesExecutor(width)


def choose(store: RunStore, device: torch.device, asked: Executor | None = None, switch: bool = False) -> Executor:
    """The executor that serves the run in `store` (module docstring). asked: the client's choice
    (None: the run's own); switch: retrain the whole run on the asked executor's path."""
    recorded = recorded_path(store)
    if asked is None:  # a path this version cannot train: the loop, which Run.train then refuses (check_path)
        if recorded is not None:
            return executor_on(recorded) or LocalExecutor()
        return LanesExecutor() if device.type == "cuda" else LocalExecutor()
    chosen = asked.for_run(recorded)
    if recorded is not None and chosen.path != recorded and not switch:
        raise ValueError(f"executor: this run was trained on the path {recorded!r} and --executor {chosen.name} "
                         f"trains on {chosen.path!r}; one run's steps must all be trained on one path, or no "
                         "reference can reproduce them. Leave --executor out to use the run's own path, or "
                         "retrain the whole run on the new one: `train --executor "
                         f"{chosen.name} --switch-path`")
    return chosen


def check_path(store: RunStore, executor: Executor, switch: bool) -> None:
    """Refuse to train on another path than the run's recorded one (the last guard: `Run.train`)."""
    recorded = recorded_path(store)
    if recorded is not None and executor.path != recorded and not switch:
        raise ValueError(f"executor: this run was trained on the path {recorded!r}; the executor given trains on "
                         f"{executor.path!r}, and one run's steps must all be trained on one path (retrain the whole "
                         "run on the new one: `train --switch-path`)")
