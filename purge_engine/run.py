"""Run: one run directory brought to life. Create or open it, train it to its plan, load its constituents.

    run = Run.create(PurgeConfig(), "runs/demo")
    run.train(on_event=print)

Training is "bring every constituent up to date with the plan": each step's checkpoint key is
computed from the plan (constituents.py), matching checkpoints are reused, the rest is retrained by
the run's executor (executors.py). The same routine resumes an interrupted run and, once the plan has
lost some samples, retrains exactly the constituents and steps those samples touched (section 5).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from purge_engine.canaries import load_run_data
from purge_engine.config import PurgeConfig
from purge_engine.constituents import Chains, ConstituentJob, check_methods, count, side_of
from purge_engine.datasets.readers import DatasetBundle, assert_memory_format
from purge_engine.events import EventCallback, PhaseEvent, ignore, worker_name
from purge_engine.execution.chains import schedule
from purge_engine.execution.choice import check_path, choose
from purge_engine.execution.executors import Executor, LocalExecutor
from purge_engine.models import build_model
from purge_engine.plan import METHODS, Plan, make_plan
from purge_engine.rundir import records, sidecar
from purge_engine.rundir.checkpoints import environment, load_checkpoint, read_sidecar
from purge_engine.rundir.files import RunDamaged
from purge_engine.rundir.ledger import Ledger
from purge_engine.rundir.leftovers import clean_leftovers
from purge_engine.rundir.lock import LOCK_TIMEOUT_S, holds_writer_lock, writer_lock
from purge_engine.rundir.manifest import write_manifest
from purge_engine.rundir.names import CheckpointName, ConstituentName
from purge_engine.rundir.store import RunStore
from purge_engine.seeding import seed_for
from purge_engine.threads import hold_threads
from purge_engine.training import Cost


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """"CPU" or the GPU's name, for people to read."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return device.type.upper()


def resolve_config(config: PurgeConfig) -> PurgeConfig:
    """Fix what 'auto' leaves open, once, at creation: the thread count is part of a run's identity.
    0 means one thread per constituent, never the machine's count (a run must not inherit it)."""
    return config.replace(threads=1) if config.threads == 0 else config


def _config_difference(stored: PurgeConfig, given: PurgeConfig) -> str:
    diffs = [f"{k} is {v!r} there, {given.to_dict()[k]!r} here" for k, v in stored.to_dict().items()
             if k != "data_root" and given.to_dict()[k] != v]
    return "; ".join(diffs)


def _check_history(store: RunStore, plan: Plan, ledger: Ledger) -> None:
    """The plan and the ledger must agree both ways. Every sample the plan has forgotten must be one a
    request asked to forget: a ledger removed together with its anchor would otherwise read as a new
    run, and the next request would be numbered 1 again. And every sample a finished request forgot must
    still be forgotten by the plan: an edited plan.json would otherwise let `train` learn it again."""
    entries = ledger.entries()
    unexplained = sorted(plan.forgotten - records.asked_ids(entries))
    if unexplained:
        raise ValueError(f"run: {store.root} has forgotten {len(unexplained)} samples (e.g. #{unexplained[0]}) that no "
                         "request in its ledger names: the ledger was removed, emptied or replaced, and its history "
                         f"exists nowhere else; `python -m purge_engine check --run {store.root}` reports it")
    relearned = sorted(records.asked_ids(entries, requests=set(records.done_ids(entries))) - plan.forgotten)
    if relearned:
        raise RunDamaged(f"run: {store.plan_path} no longer forgets {len(relearned)} samples (e.g. #{relearned[0]}) "
                         "that finished requests in the ledger forgot: it was edited or replaced; `python -m "
                         f"purge_engine check --run {store.root} --repair` rebuilds it from the manifest")


class Run:
    """A run directory with its config, plan, dataset and device; the verbs live in their own modules."""

    def __init__(self, store: RunStore, config: PurgeConfig, plan: Plan, bundle: DatasetBundle,
                 executor: Executor | None = None, switch: bool = False, wait: float | None = LOCK_TIMEOUT_S,
                 on_wait: Callable[[str], None] | None = None):
        """executor: what trains its chains, as chosen for this run (execution.choose; None: the loop);
        switch: it may retrain the whole run on another path than the recorded one; wait: seconds to
        wait for another writer (None: for ever), on_wait: told when it must wait (the CLI prints it)."""
        self.store, self.config = store, config
        self.plan = plan
        self.device = resolve_device(config.device)
        self.bundle = bundle.to(self.device)
        self._teacher_cache: dict[int, nn.Module] = {}
        self.request_id: int | None = None  # the forget request being served, stamped into what it trains
        self.executor, self.switch = executor or LocalExecutor(), switch
        self.lock_timeout = wait
        self.on_wait: Callable[[str], None] = on_wait or (lambda _sentence: None)

    # -- create / open ---------------------------------------------------------------------
    @classmethod
    def create(cls, config: PurgeConfig, run_dir: Path | str, download: bool = False,
               plan: Plan | None = None, exclude=(), executor: Executor | None = None, switch: bool = False,
               **waiting) -> Run:
        """A new run in run_dir (or the run already there, when it holds the same config).

        exclude: sample ids the dataset is built without, as if its source never held them; the plan
        is then made from that data alone (verification's from-scratch reference).
        plan: train on this plan instead of a fresh one (trusts the caller's plan; tests use it).
        executor, switch: the client's choice of executor (execution.choose decides; None: the run's own);
        waiting: wait and on_wait, as the constructor's."""
        store = RunStore(run_dir)
        config.validate()
        if store.root.exists() and not store.root.is_dir():
            raise ValueError(f"run: {store.root} exists and is not a directory; a run is a directory")
        if store.is_run():
            stored = store.read_config()
            wanted = config.replace(threads=stored.threads) if config.threads == 0 else config
            difference = _config_difference(stored, wanted)
            if difference:
                raise ValueError(f"run: {store.root} already holds a run with another config: {difference}; "
                                 "choose another run directory")
            return cls.open(run_dir, executor=executor, switch=switch, **waiting)
        config = resolve_config(config)
        bundle = load_run_data(config, download=download, exclude=exclude)
        plan = plan or make_plan(config, bundle)
        chosen = choose(store, resolve_device(config.device), executor, switch)  # before anything is written
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_plan(plan)
        store.write_config(config)  # last: config.json marks a complete run directory
        return cls(store, config, plan, bundle, chosen, switch, **waiting)

    @classmethod
    def open(cls, run_dir: Path | str, executor: Executor | None = None, switch: bool = False, **waiting) -> Run:
        """The run in run_dir, as stored (Experiment.open also finishes a request a dead process left).
        executor, switch, waiting: as create's."""
        store = RunStore(run_dir)
        store.check_is_run()
        clean_leftovers(store)  # temp files a crashed write left, when no live writer owns them
        config = store.read_config().validate()
        plan = store.read_plan()
        ledger = Ledger(store.ledger_path)
        ledger.check()  # a ledger emptied, cut short or corrupted: a LedgerError sentence
        _check_history(store, plan, ledger)
        bundle = load_run_data(config)
        if plan.n_pool != bundle.id_space:
            raise ValueError(f"run: {store.root} was planned over {plan.n_pool} samples but {config.dataset} in "
                             f"{config.data_root} has {bundle.id_space} (the dataset's files or its split rule "
                             "changed since: the built-ins are split by each image's own pixels since this version; "
                             "train a new run)")
        return cls(store, config, plan, bundle, choose(store, resolve_device(config.device), executor, switch), switch,
                   **waiting)

    # -- keys: what every checkpoint must hold, computed from the plan -----------------------
    def _meta(self) -> dict:
        return {sidecar.SEED: self.config.seed, sidecar.CONFIG_FINGERPRINT: self.config.fingerprint(),
                sidecar.ENVIRONMENT: self.environment(), sidecar.REQUEST_ID: self.request_id,
                sidecar.EXECUTOR: self.executor.name, sidecar.WORKER: worker_name()}

    def environment(self) -> dict:
        """What decides the bits besides the data (section 6): recorded in every sidecar, compared by
        verify. The executor's execution path is part of it, the executor's name is not: the loop gives
        the same bits in this process and in a Ray worker."""
        return {**environment(self.device), "memory_format": self.config.memory_format, "path": self.executor.path}

    @property
    def plan(self) -> Plan:
        return self._plan

    @plan.setter
    def plan(self, plan: Plan) -> None:
        """A new plan brings its own key chains (computed once per plan, constituents.py)."""
        self._plan, self.chains = plan, Chains(self.config, plan)

    def job(self, role: str, constituent: int) -> ConstituentJob:
        """The chain of steps the plan asks of one constituent of a role ("teacher" or a method)."""
        return self.chains.job(role, constituent, self._meta())

    # -- models --------------------------------------------------------------------------------
    def new_model(self, role: str, constituent: int) -> nn.Module:
        """A constituent's seeded initial model. Every student method starts student k from the same
        init: a fair comparison, and no method is warm-started from another's training."""
        side = side_of(role)
        arch = self.config.teacher_arch if side == "teacher" else self.config.student_arch
        seed = seed_for(self.config.seed, f"{side}-init", constituent)
        return self._laid_out(build_model(arch, self.bundle.spec, seed))

    def _laid_out(self, model: nn.Module) -> nn.Module:
        """Convolution weights in the run's memory format, like its inputs (section 6)."""
        fmt = torch.channels_last if self.config.memory_format == "channels_last" else torch.contiguous_format
        return model.to(memory_format=fmt)

    def load_constituent(self, role: str, constituent: int) -> nn.Module:
        """The constituent's final checkpoint as an eval() model; CheckpointError if it is not current."""
        last = self.job(role, constituent).steps[-1]
        model = self.new_model(role, constituent).to(self.device)
        name = CheckpointName(role, constituent, last.step)
        model.load_state_dict(load_checkpoint(self.store.stem(name), sidecar.identity(name, last.key),
                                              self.device))
        return model.eval()

    def teacher_for_labels(self, teacher_id: int) -> nn.Module:
        if teacher_id not in self._teacher_cache:
            self._teacher_cache[teacher_id] = self.load_constituent("teacher", teacher_id)
        return self._teacher_cache[teacher_id]

    # -- the writer lock --------------------------------------------------------------------------
    @contextmanager
    def writing(self, what: str, on_event: EventCallback = ignore, should_stop: Callable[[], bool] | None = None,
                shared: bool = False):
        """Hold the run's writer lock (rundir/lock.py) for `what` ("training", ...), waiting up to
        self.lock_timeout for another writer and saying so (a PhaseEvent "waiting" and self.on_wait);
        RunBusy names the request in progress when the wait runs out. Taken first (not inside a
        forget request that holds it already), the plan is read again from disk: another process may
        have served a request since this run was opened. shared: a reader (evaluate)."""
        def waiting(sentence: str) -> None:
            on_event(PhaseEvent("phase", "waiting", sentence))
            self.on_wait(sentence)

        first = not holds_writer_lock(self.store)
        with writer_lock(self.store, timeout=self.lock_timeout, holder=what, on_wait=waiting,
                         should_stop=should_stop, shared=shared):
            if first and self.store.plan_path.is_file():
                self.reload_plan()
            yield

    # -- training ---------------------------------------------------------------------------------
    def apply_threads(self) -> None:
        """The config's thread count and the device's settings, set directly: for a process of its own
        (a Ray worker). In a process that may run several jobs, hold them instead (threads_held)."""
        torch.set_num_threads(self.config.threads)
        self._device_settings()

    @contextmanager
    def threads_held(self, should_stop: Callable[[], bool] | None = None, on_event: EventCallback = ignore,
                     strict: bool = True):
        """Run the block on the config's thread count, held for the whole process (threads.py): strict
        (training) waits for a job of this process that runs on another count, saying so; lenient
        (evaluation) runs on the count held."""
        def waiting(sentence: str) -> None:
            on_event(PhaseEvent("phase", "waiting", sentence))
            self.on_wait(sentence)

        with hold_threads(self.config.threads, should_stop, waiting, strict) as count:
            self._device_settings()
            yield count

    def _device_settings(self) -> None:
        if self.device.type == "cuda":  # every setting that decides a GPU's bits, pinned (and recorded: environment)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cuda.matmul.allow_tf32 = False  # torch 2.14 convolutions use TF32 unless told not to
            torch.backends.cudnn.allow_tf32 = False

    def inputs(self, ids: np.ndarray) -> torch.Tensor:
        """Train inputs of the given sample ids, checked to be in the run's memory format."""
        x = self.bundle.train_x[self.bundle.rows(ids)]
        assert_memory_format(x, self.config.memory_format)
        return x

    def train(self, on_event: EventCallback | None = None, should_stop: Callable[[], bool] | None = None,
              methods: Sequence[str] = METHODS) -> dict[str, Cost]:
        """Bring teachers and the given student methods up to date with the plan.

        Returns the measured cost per role ("teacher" and each method); label forward passes are
        charged to the method that needed them. Raises training.Cancelled when should_stop() turns true.
        """
        on_event, should_stop = on_event or ignore, should_stop or (lambda: False)
        check_methods(methods)
        with self.writing("training", on_event, should_stop), self.threads_held(should_stop, on_event):
            check_path(self.store, self.executor, self.switch)
            self._teacher_cache.clear()
            self.store.record_execution(self.config, {**self.executor.describe(), "path": self.executor.path})
            tasks = schedule(self.plan, methods, self.executor.by_segment)
            costs = self.executor.train(self, tasks, on_event, should_stop)
            write_manifest(self.store, self.config, self.plan)  # a commit point: what check judges against
        on_event(PhaseEvent("phase", "done"))
        return costs

    def is_current(self, role: str, constituent: int) -> bool:
        """True when the constituent's final checkpoint holds the key the plan asks for."""
        job = self.job(role, constituent)
        meta = read_sidecar(self.store.checkpoint_stem(role, constituent, job.steps[-1].step))
        return meta is not None and meta.get(sidecar.KEY) == job.steps[-1].key

    def trained_roles(self) -> list[str]:
        """Roles whose every constituent is current: "teacher" and the trained student methods."""
        return [role for role in ("teacher", *METHODS)
                if all(self.is_current(role, c) for c in range(count(role, self.plan)))]

    def parameters(self, role: str, constituent: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.load_constituent(role, constituent).state_dict().items()}

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store.ledger_path)

    def constituents(self, roles) -> list[tuple[str, int]]:
        """(role, constituent) for every constituent of the given roles, in order."""
        return [(role, c) for role in roles for c in range(count(role, self.plan))]

    def param_hashes(self, roles) -> dict[str, str]:
        """"role-id" (names.ConstituentName) -> hash of the parameters in the constituent's final checkpoint
        (None when absent)."""
        hashes = {}
        for role, c in self.constituents(roles):
            meta = read_sidecar(self.store.checkpoint_stem(role, c, self.job(role, c).steps[-1].step)) or {}
            hashes[str(ConstituentName(role, c))] = meta.get(sidecar.PARAM_HASH)
        return hashes

    def reload_plan(self) -> None:
        self.plan = self.store.read_plan()

    def latest_request(self) -> int | None:
        return self.ledger.latest_done()
