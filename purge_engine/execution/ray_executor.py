"""RayExecutor: constituent chains as Ray core tasks, on every core of one machine or on a cluster (section 12).

Constituents share nothing but their teachers' outputs, so this is a task farm: one idempotent task
per teacher chain, and per segment of a student chain (constituents.segments: the steps that need no
new teacher). Teacher tasks are submitted first; a student segment's task takes the previous segment
and the teachers its labels need as dependencies, so a PURGE student's first chunk trains as soon
as its first mapped teacher is done, while the baseline (every teacher labels its first chunk)
waits for the whole ensemble. Workers read their start checkpoint
and write their step checkpoints (tensors first, sidecar last) into the run directory, which must be
on storage every node sees; the driver alone writes the config, the plan and the ledger. A task is
idempotent by content key, so a retried task (a lost worker, `max_retries`) reuses every step already
finished and retrains none. Data reaches workers as torch tensors through the object store, and each
worker re-lays them out in the run's memory format, sets its own thread count and stamps its own
environment into what it writes.

With `lanes` (W), a task trains a block of W chains of one role as one lane group instead (lanes.py),
each chain in lane constituent mod W, so its bits equal the in-process LanesExecutor's; on a GPU each
task takes 1/workers of it, so several lane groups share one GPU. Student blocks wait for every
teacher block.

Imported only when `--executor ray` is asked for: the default executor never loads Ray.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import ray

from purge_engine.events import Cancelled, EventCallback, LabelEvent, PhaseEvent, StepEvent, worker_name
from purge_engine.execution.chains import ChainTask, by_role
from purge_engine.execution.executors import LOOP_PATH, Executor, LocalExecutor
from purge_engine.execution.lanes import LanesExecutor, check_fits, check_lanes, lanes_path
from purge_engine.rundir.store import RunStore
from purge_engine.training import Cost

POLL_SECONDS = 0.1
_JOINED: str | None = None  # the cluster this process joined through connect() ("local" or an address)
MAX_RETRIES = 3  # a task whose worker died is run again; finished steps are reused by key


@ray.remote(num_cpus=0)
class Control:
    """The driver's mailbox: workers post progress events (fire and forget), each under the token of
    the train call it belongs to. One per driver and cluster (_control): a new actor per call would
    start a process, and import the engine, on the cores the call's chains train on."""

    def __init__(self):
        self.events: dict[str, list[tuple[str, dict]]] = {}

    def open(self, token: str) -> None:
        self.events[token] = []

    def post(self, token: str, kind: str, event: dict) -> None:
        if token in self.events:  # a straggler of a closed call (cancelled, failed) is dropped
            self.events[token].append((kind, event))

    def drain(self, token: str, close: bool = False) -> list[tuple[str, dict]]:
        if token not in self.events:
            return []
        events = self.events.pop(token) if close else self.events[token]
        if not close:
            self.events[token] = []
        return events


_CONTROL: tuple[tuple[str, str], object] | None = None  # ((driver's node, Ray job), the Control actor)


def _control():
    """This driver's Control actor on the cluster it is connected to, made again after a ray.init (a
    new cluster numbers its jobs from 1 again, but its nodes get new ids)."""
    global _CONTROL
    context = ray.get_runtime_context()
    key = (context.get_node_id(), context.get_job_id())
    if _CONTROL is None or _CONTROL[0] != key:
        _CONTROL = (key, Control.remote())
    return _CONTROL[1]


# A worker never blocks on the driver: a ray.get inside a task hands its CPU back to Ray, which then
# starts another worker process (importing torch again) and runs two chains on one CPU. The stop
# flag is a file in the run directory (every node sees it), named for the one train call it stops.
def _stop_path(root: str, token: str) -> str:
    return os.path.join(root, f".stop-{token}")


def _worker_run(run_class, root: str, config, plan, bundle, request_id, width: int | None):
    """The run in a worker (run_class: the driver's Run class, sent by reference), on the in-process
    executor of the driver's path (the loop, or lanes of W); its sidecars name the Ray executor."""
    store = RunStore(root)
    if not store.is_run():
        raise RuntimeError(f"run: {root} is not visible from Ray worker {os.uname().nodename}; the run directory "
                           "must be on storage every node of the cluster mounts at the same path")
    executor = LocalExecutor() if width is None else LanesExecutor(width)
    executor.name = "ray"  # what the sidecars say trained them; the path is the in-process executor's
    run = run_class(store, config, plan, bundle, executor)
    run.request_id = request_id
    run.apply_threads()
    return run


def _check_torch(torch_version: str) -> None:
    import torch

    if torch.__version__ != torch_version:
        raise RuntimeError(f"worker {worker_name()}: torch {torch.__version__}, but the driver runs torch "
                           f"{torch_version}; exactness needs one torch build on every node")


def _reporting(control, token: str, worker: str):
    """Post a worker's step and label events to the driver; its phases are the driver's to announce."""
    def on_event(event) -> None:
        if not isinstance(event, PhaseEvent):
            body = asdict(event) | ({"worker": worker} if isinstance(event, StepEvent) else {})
            control.post.remote(token, type(event).__name__, body)

    return on_event


@ray.remote(max_retries=MAX_RETRIES)
def tasks_task(run_class, root: str, config, plan, bundle, request_id, tasks: list[ChainTask], width: int | None,
               control, token: str, torch_version: str, *done_before) -> dict:
    """Train chain tasks in a worker: one chain or segment on the loop, or a block of W chains of one role
    as one lane group (width W; each in lane constituent mod W, the bits the in-process LanesExecutor
    gives it). Returns its measured cost per role and where it ran. done_before: the tasks it waits
    for (the teachers its labels need, the chain's previous segment), resolved by Ray before it starts."""
    started = time.perf_counter()
    _check_torch(torch_version)
    run = _worker_run(run_class, root, config, plan, bundle, request_id, width)
    if width is not None:
        check_fits(run, tasks[0].role, width)
    worker, ready = worker_name(), time.perf_counter()

    def should_stop() -> bool:
        return os.path.exists(_stop_path(root, token))

    costs = run.executor.train(run, tasks, _reporting(control, token, worker), should_stop)
    # Where a task's time goes: set-up (imports on a fresh worker, the run) apart from its chains.
    timing = {"setup_seconds": ready - started, "chain_seconds": time.perf_counter() - ready, "pid": os.getpid()}
    return {"role": tasks[0].role, "constituent": tasks[0].constituent, "part": tasks[0].part,
            "constituents": [t.constituent for t in tasks], "costs": {r: c.to_dict() for r, c in costs.items()},
            "worker": worker, "timing": timing}


_EVENTS = {"StepEvent": StepEvent, "LabelEvent": LabelEvent, "PhaseEvent": PhaseEvent}


def _event_from(kind: str, body: dict):
    if kind == "LabelEvent":
        body = {**body, "teacher_ids": tuple(body["teacher_ids"])}
    return _EVENTS[kind](**body)


class RayExecutor(Executor):
    """One Ray task per constituent chain; `address`: an existing cluster ("auto", "host:port"), or
    None to start a local one with `workers` CPUs (default: every core)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, lanes: int | None = None):
        self.address, self.requested_workers = address, workers
        self.lanes = None if lanes is None else check_lanes(lanes)  # W: each task trains a block as lanes
        self.startup_seconds = 0.0
        self.timings: list[dict] = []  # per task of the last train: setup_seconds, chain_seconds, pid

    # -- the cluster ------------------------------------------------------------------------------
    def connect(self) -> None:
        global _JOINED
        wanted = self.address or "local"
        if ray.is_initialized():
            if _JOINED is not None and wanted != _JOINED:
                raise ValueError(f"ray_address: got {wanted!r}, but this process has joined the Ray cluster "
                                 f"{_JOINED!r} already and Ray serves one cluster per process; restart it to "
                                 "use another cluster")
            return
        if self.address and self.address != "auto":
            _check_reachable(self.address)
        start = time.perf_counter()
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=self.requested_workers or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, logging_level="ERROR", _node_ip_address="127.0.0.1")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ValueError(f"ray_address: could not join the Ray cluster at {self.address!r}: {err}") from None
        _JOINED = wanted
        _warm_workers(int(ray.cluster_resources().get("CPU", 1)))
        self.startup_seconds = time.perf_counter() - start

    @property
    def path(self) -> str:
        """The execution path every checkpoint records: the loop's, or a lane group's of width W."""
        return LOOP_PATH if self.lanes is None else lanes_path(self.lanes)

    @property
    def workers(self) -> int:
        self.connect()
        return int(ray.cluster_resources().get("CPU", 1))

    def describe(self) -> dict:
        """{"executor", "workers", "nodes", "cpus", "gpus", "address"} of the cluster in use."""
        self.connect()
        resources = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"executor": self.name, "workers": int(resources.get("CPU", 0)), "nodes": len(nodes),
                "cpus": int(resources.get("CPU", 0)), "gpus": int(resources.get("GPU", 0)),
                "address": self.address or "local", **({"lanes": self.lanes} if self.lanes else {})}

    # -- training ---------------------------------------------------------------------------------
    @property
    def by_segment(self) -> bool:
        """On the loop a student segment starts as soon as its teachers are done; lane blocks take whole chains."""
        return self.lanes is None

    def train(self, run, tasks: Sequence[ChainTask], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        import torch

        self.connect()
        control, token = _control(), secrets.token_hex(8)
        ray.get(control.open.remote(token))
        root = str(run.store.root.resolve())
        shared = (type(run), root, run.config, run.plan, ray.put(run.bundle.to("cpu")), run.request_id)
        options = {"num_cpus": 1, "num_gpus": 0 if run.device.type == "cpu" else 1 / max(1, self.workers)}

        def submit(group: list[ChainTask], *done_before):
            return tasks_task.options(**options).remote(*shared, group, self.lanes, control, token,
                                                        torch.__version__, *done_before)

        on_event(PhaseEvent("phase", "teachers"))
        refs = self._submit(tasks, submit)
        try:
            results = self._wait(refs, control, token, _stop_path(root, token), on_event, should_stop)
        finally:
            control.drain.remote(token, close=True)
            if os.path.exists(_stop_path(root, token)):
                os.remove(_stop_path(root, token))
        self.timings = [{"role": r["role"], "constituent": r["constituent"], "part": r["part"], **r["timing"]}
                        for r in results]
        return _costs(results)

    def _submit(self, tasks: Sequence[ChainTask], submit) -> list:
        """One Ray task per chain task (loop) or per block of W chains of a role (lanes), each waiting for
        the teachers its labels need and, for a segment, for the segment before it."""
        teachers: dict[int, object] = {}  # teacher constituent -> the Ray task that trains it
        previous: dict[tuple[str, int], object] = {}  # a student chain's latest segment
        refs = []
        for role, group in by_role(tasks):
            for block in ([[t] for t in group] if self.lanes is None else
                          [group[i:i + self.lanes] for i in range(0, len(group), self.lanes)]):
                needs = {id(teachers[n]): teachers[n] for t in block for n in t.needs if n in teachers}
                before = [previous[(t.role, t.constituent)] for t in block if (t.role, t.constituent) in previous]
                ref = submit(block, *before, *needs.values())
                for t in block:
                    (teachers if role == "teacher" else previous)[t.constituent if role == "teacher"
                                                                  else (t.role, t.constituent)] = ref
                refs.append(ref)
        return refs

    def _wait(self, refs, control, token: str, stop_path: str, on_event: EventCallback,
              should_stop: Callable[[], bool]) -> list[dict]:
        pending, stopping = list(refs), False
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            for kind, body in ray.get(control.drain.remote(token)):
                on_event(_event_from(kind, body))
            if not stopping and should_stop():
                stopping = True
                with open(stop_path, "w") as flag:
                    flag.write("stop\n")
        for kind, body in ray.get(control.drain.remote(token)):
            on_event(_event_from(kind, body))
        try:
            return ray.get(list(refs))
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, Cancelled) or stopping:
                raise Cancelled("cancelled: the Ray tasks stopped at their next step boundary") from None
            raise RuntimeError(f"a Ray task failed: {err.cause}") from None


@ray.remote(num_cpus=1)
def _warm(seconds: float) -> int:
    import purge_engine.execution.executors  # noqa: F401 (torch and the engine, once per worker process)

    time.sleep(seconds)  # held long enough that the next warm-up lands on another worker
    return os.getpid()


def _warm_workers(n: int) -> None:
    """Start and warm one worker per CPU (a fresh worker spends ~2 s importing torch): part of the
    start-up, so the first chains of the first job do not pay it."""
    ray.get([_warm.remote(0.2) for _ in range(n)])


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address nothing listens on (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as err:
        raise ValueError(f"ray_address: got {address!r}, but no Ray cluster answers there ({err}); start one with "
                         "`ray start --head` or leave --ray-address out to start a local one") from None


def _costs(results: list[dict]) -> dict[str, Cost]:
    costs: dict[str, Cost] = {}
    for result in results:
        for role, cost in result["costs"].items():
            costs.setdefault(role, Cost()).add(Cost(**cost))
    return costs
