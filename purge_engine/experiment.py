"""Experiment: the public face of the engine. Create or open a run, train it, evaluate it.

    exp = Experiment.create(PurgeConfig(), "runs/demo")
    exp.train(on_event=print)
    exp.evaluate()["accuracy"]

Training is "bring every constituent up to date with the plan": each step's checkpoint key is
computed from the plan, matching checkpoints are reused, the rest is retrained. The same
routine resumes an interrupted run and, once the plan has lost some samples, retrains exactly
the constituents and steps those samples touched (section 5).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from purge_engine.checkpoints import environment, load_checkpoint, read_sidecar
from purge_engine.config import PurgeConfig
from purge_engine.constituents import Chains, ConstituentJob
from purge_engine.data import DatasetBundle, assert_memory_format, load_dataset
from purge_engine.evaluate import accuracy_of, ensemble_predict, mean_softmax, stack_live
from purge_engine.events import EventCallback, PhaseEvent, ignore
from purge_engine.forget import ForgetReport
from purge_engine.models import build_model
from purge_engine.plan import METHODS, Plan, make_plan, predicted_cost, retrain_scope
from purge_engine.scoring import sample_sets, score_role
from purge_engine.seeding import seed_for
from purge_engine.soft_labels import LabelCache, label_teachers
from purge_engine.store import Ledger, RunStore, writer_lock
from purge_engine.training import (
    Cost,
    StepSpec,
    student_loss,
    teacher_loss,
    train_constituent,
)
from purge_engine.training import predict_proba as _predict_proba
from purge_engine.verify import build_reference, scratch_dir, verify_request
from purge_engine.work import cost_matches, work_of_request


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


class Experiment:
    def __init__(self, store: RunStore, config: PurgeConfig, plan: Plan, bundle: DatasetBundle):
        self.store, self.config = store, config
        self.plan = plan
        self.device = resolve_device(config.device)
        self.bundle = bundle.to(self.device)
        self._teacher_cache: dict[int, nn.Module] = {}
        self._request_id: int | None = None  # the forget request being served, stamped into what it trains

    # -- create / open ---------------------------------------------------------------------
    @classmethod
    def create(cls, config: PurgeConfig, run_dir: Path | str, download: bool = False,
               plan: Plan | None = None, exclude=()) -> Experiment:
        """A new run in run_dir (or the run already there, when it holds the same config).

        exclude: sample ids the dataset is built without, as if its source never held them; the plan
        is then made from that data alone (verification's from-scratch reference).
        plan: train on this plan instead of a fresh one (trusts the caller's plan; tests use it)."""
        store = RunStore(run_dir)
        config.validate()
        if store.is_run():
            stored = store.read_config()
            wanted = config.replace(threads=stored.threads) if config.threads == 0 else config
            difference = _config_difference(stored, wanted)
            if difference:
                raise ValueError(f"run: {store.root} already holds a run with another config: {difference}; "
                                 "choose another run directory")
            return cls.open(run_dir)
        config = resolve_config(config)
        bundle = load_dataset(config.dataset, config.data_root, download=download, exclude=exclude,
                              memory_format=config.memory_format)
        plan = plan or make_plan(config, bundle)
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_plan(plan)
        store.write_config(config)  # last: config.json marks a complete run directory
        return cls(store, config, plan, bundle)

    @classmethod
    def open(cls, run_dir: Path | str, finish_pending: bool = True) -> Experiment:
        """The run in run_dir. A request a dead process left half done is finished first, unless
        finish_pending is False (a caller that must not block, like a page script, finishes it later)."""
        store = RunStore(run_dir)
        store.check_is_run()
        config = store.read_config().validate()
        plan = store.read_plan()
        bundle = load_dataset(config.dataset, config.data_root, memory_format=config.memory_format)
        if plan.n_pool != bundle.id_space:
            raise ValueError(f"run: {store.root} was planned over {plan.n_pool} samples but {config.dataset} in "
                             f"{config.data_root} has {bundle.id_space}")
        exp = cls(store, config, plan, bundle)
        if finish_pending:
            exp.finish_pending()
        return exp

    # -- keys: what every checkpoint must hold, computed from the plan -----------------------
    def _meta(self) -> dict:
        return {"seed": self.config.seed, "config_fingerprint": self.config.fingerprint(),
                "environment": self.environment(), "request_id": self._request_id}

    def environment(self) -> dict:
        """What decides the bits besides the data (section 6): recorded in every sidecar, compared by verify."""
        return {**environment(self.device), "memory_format": self.config.memory_format, "executor": "local"}

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

    def teacher_job(self, teacher_id: int) -> ConstituentJob:
        return self.job("teacher", teacher_id)

    def student_job(self, method: str, student_id: int) -> ConstituentJob:
        return self.job(method, student_id)

    def teacher_keys(self) -> tuple[str, ...]:
        return self.chains.teacher_keys

    def slice_label_key(self, method: str, student_id: int, chunk_id: int, slice_id: int) -> str:
        return self.chains.slice_label_key(method, student_id, chunk_id, slice_id)

    # -- models --------------------------------------------------------------------------------
    def new_teacher(self, teacher_id: int) -> nn.Module:
        seed = seed_for(self.config.seed, "teacher-init", teacher_id)
        return self._laid_out(build_model(self.config.teacher_arch, self.bundle.spec, seed))

    def new_student(self, student_id: int) -> nn.Module:
        # Every student method starts student k from the same seeded init: a fair comparison,
        # and no method is warm-started from another's training.
        seed = seed_for(self.config.seed, "student-init", student_id)
        return self._laid_out(build_model(self.config.student_arch, self.bundle.spec, seed))

    def _laid_out(self, model: nn.Module) -> nn.Module:
        """Convolution weights in the run's memory format, like its inputs (section 6)."""
        fmt = torch.channels_last if self.config.memory_format == "channels_last" else torch.contiguous_format
        return model.to(memory_format=fmt)

    def load_constituent(self, role: str, constituent: int) -> nn.Module:
        """The constituent's final checkpoint as an eval() model; CheckpointError if it is not current."""
        last = self.job(role, constituent).steps[-1]
        model = (self.new_teacher(constituent) if role == "teacher" else self.new_student(constituent)).to(self.device)
        expect = {"role": role, "constituent": constituent, "step": last.step, "key": last.key}
        model.load_state_dict(load_checkpoint(self.store.checkpoint_stem(role, constituent, last.step), expect,
                                              self.device))
        return model.eval()

    def _teacher_for_labels(self, teacher_id: int) -> nn.Module:
        if teacher_id not in self._teacher_cache:
            self._teacher_cache[teacher_id] = self.load_constituent("teacher", teacher_id)
        return self._teacher_cache[teacher_id]

    # -- training ---------------------------------------------------------------------------------
    def _apply_threads(self) -> None:
        torch.set_num_threads(self.config.threads)
        if self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)

    def _inputs(self, ids: np.ndarray) -> torch.Tensor:
        """Train inputs of the given sample ids, checked to be in the run's memory format."""
        x = self.bundle.train_x[self.bundle.rows(ids)]
        assert_memory_format(x, self.config.memory_format)
        return x

    def train(self, on_event: EventCallback | None = None, should_stop: Callable[[], bool] | None = None,
              methods: Sequence[str] = METHODS, roles: Sequence[str] | None = None) -> dict[str, Cost]:
        """Bring teachers and the given student methods up to date with the plan.

        Returns the measured cost per role ("teacher" and each method); label forward passes are
        charged to the method that needed them. Raises training.Cancelled when should_stop() turns true.
        """
        on_event, should_stop = on_event or ignore, should_stop or (lambda: False)
        self._check_methods(methods)
        self._apply_threads()
        self._teacher_cache.clear()
        costs = {"teacher": self._train_teachers(on_event, should_stop)}
        for method in methods:
            costs[method] = self._train_students(method, on_event, should_stop)
        on_event(PhaseEvent("phase", "done"))
        return costs

    @staticmethod
    def _check_methods(methods: Sequence[str]) -> None:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods: got {unknown}, must be among {', '.join(METHODS)}")

    def _train_teachers(self, on_event, should_stop) -> Cost:
        on_event(PhaseEvent("phase", "teachers"))
        cost = Cost()
        def step_data(spec: StepSpec):
            return self._inputs(spec.ids), (self.bundle.train_y[self.bundle.rows(spec.ids)],)

        for i in range(self.config.n_teachers):
            cost.add(train_constituent(self.teacher_job(i), self.store, lambda i=i: self.new_teacher(i), step_data,
                                       teacher_loss, self.config.batch_size, self.config.teacher_lr,
                                       self.config.seed, self.device, on_event, should_stop))
        return cost

    def _train_students(self, method: str, on_event, should_stop) -> Cost:
        on_event(PhaseEvent("phase", f"students:{method}"))
        labels = LabelCache(self.store, self._teacher_for_labels, self._inputs, self.bundle.spec.n_classes,
                            self.config.temperature, self.device, on_event, {"request_id": self._request_id})
        loss = student_loss(self.config.temperature, self.config.alpha)
        teacher_keys = self.teacher_keys()
        cost = Cost()
        for k in range(self.config.n_students):
            job = self.student_job(method, k)
            step_data = self._student_step_data(method, k, labels, teacher_keys)
            cost.add(train_constituent(job, self.store, lambda k=k: self.new_student(k), step_data, loss,
                                       self.config.batch_size, self.config.student_lr, self.config.seed,
                                       self.device, on_event, should_stop))
        cost.label_forwards += labels.label_forwards
        cost.seconds += labels.seconds
        return cost

    def _student_step_data(self, method: str, student_id: int, labels: LabelCache, teacher_keys: tuple[str, ...]):
        """Inputs and (soft labels, true labels) of a student step, slice by slice in plan order."""
        plan = self.plan

        def slice_labels(c: int, j: int) -> torch.Tensor:
            teachers = label_teachers(plan, method, student_id, c)
            return labels.get(method, student_id, c, j, teachers, tuple(teacher_keys[t] for t in teachers),
                              plan.student_shards[student_id][c][j])

        def step_data(spec: StepSpec):
            soft = [slice_labels(c, j) for c, j in plan.student_step_slices(student_id, spec.step)]
            return self._inputs(spec.ids), (torch.cat(soft), self.bundle.train_y[self.bundle.rows(spec.ids)])

        return step_data

    # -- evaluation ----------------------------------------------------------------------------------
    def is_current(self, role: str, constituent: int) -> bool:
        """True when the constituent's final checkpoint holds the key the plan asks for."""
        job = self.job(role, constituent)
        meta = read_sidecar(self.store.checkpoint_stem(role, constituent, job.steps[-1].step))
        return meta is not None and meta.get("key") == job.steps[-1].key

    def trained_roles(self) -> list[str]:
        """Roles whose every constituent is current: "teacher" and the trained student methods."""
        counts = {"teacher": self.config.n_teachers, **{m: self.config.n_students for m in METHODS}}
        return [role for role, n in counts.items() if all(self.is_current(role, c) for c in range(n))]

    def constituent_probs(self, role: str, inputs: torch.Tensor) -> list[torch.Tensor]:
        count = self.config.n_teachers if role == "teacher" else self.config.n_students
        self._apply_threads()
        return [_predict_proba(self.load_constituent(role, c), inputs) for c in range(count)]

    def live_probs(self, probs: list[torch.Tensor], role: str = "teacher") -> torch.Tensor:
        """(k, n, classes): the softmax outputs (n, classes) of every constituent, stacked, keeping the
        k non-empty ones (an emptied constituent takes no part in the ensemble; k may be 0)."""
        return stack_live(probs, [c for c in range(len(probs)) if not self.plan.is_empty(_plan_role(role), c)])

    def aggregate(self, probs: list[torch.Tensor], role: str = "teacher") -> torch.Tensor:
        """Ensemble prediction (n,) from per-constituent softmax outputs (section 4.8), by the run's
        aggregation (evaluate.ensemble_predict); with no constituent left, evaluate.ABSTAIN (-1) for all."""
        return ensemble_predict(self.live_probs(probs, role), self.config.aggregation)

    def evaluate(self, inputs: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """Accuracy (fractions in [0, 1]; None on no samples) of the teacher ensemble and each trained
        student method's ensemble (aggregated as the config says, section 4.8), and of every single
        constituent, on the test split unless inputs are given."""
        inputs = self.bundle.test_x if inputs is None else inputs
        labels = self.bundle.test_y if labels is None else labels
        roles = self.trained_roles()
        if "teacher" not in roles:
            raise ValueError(f"run: {self.store.root} has no trained teachers yet; train it first")
        accuracy, constituents = {}, {}
        for role in roles:
            probs = self.constituent_probs(role, inputs)
            accuracy[role] = accuracy_of(self.aggregate(probs, role), labels)
            constituents[role] = [accuracy_of(p.argmax(1), labels) for p in probs]
        return {"accuracy": accuracy, "constituents": constituents, "samples": int(labels.numel())}

    def parameters(self, role: str, constituent: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.load_constituent(role, constituent).state_dict().items()}

    def ensemble_probs(self, role: str, inputs: torch.Tensor) -> torch.Tensor:
        """Mean softmax (n, classes) over the role's non-empty constituents; uniform when none is left."""
        return mean_softmax(self.live_probs(self.constituent_probs(role, inputs), role))

    # -- forget requests -----------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store.ledger_path)

    def constituents(self, roles) -> list[tuple[str, int]]:
        """(role, constituent) for every constituent of the given roles, in order."""
        return [(role, c) for role in roles
                for c in range(self.config.n_teachers if role == "teacher" else self.config.n_students)]

    def param_hashes(self, roles) -> dict[str, str]:
        """"role-id" -> hash of the parameters in the constituent's final checkpoint (None when absent)."""
        hashes = {}
        for role, c in self.constituents(roles):
            meta = read_sidecar(self.store.checkpoint_stem(role, c, self.job(role, c).steps[-1].step)) or {}
            hashes[f"{role}-{c}"] = meta.get("param_hash")
        return hashes

    def _score(self, roles, forgotten: list[int]) -> tuple[dict, dict]:
        """Accuracy on test / retained / forgotten samples (by the run's aggregation, as evaluate) and
        the membership check on the role's own training samples, per role (scoring.py). Each
        constituent makes one forward pass over all the sets together."""
        accuracy, membership = {}, {}
        for role in roles:
            sets = sample_sets(self.bundle, self.plan, forgotten, self.config.seed, role).sets
            sizes = [int(y.shape[0]) for _, y in sets.values()]
            probs = self.live_probs(self.constituent_probs(role, torch.cat([x for x, _ in sets.values()])), role)
            accuracy[role], membership[role] = score_role(
                dict(zip(sets, probs.split(sizes, dim=1), strict=True)), {name: y for name, (_, y) in sets.items()},
                self.config.aggregation, self.config.seed, role)
        return accuracy, membership

    def _reload_plan(self) -> None:
        self.plan = self.store.read_plan()

    def forget(self, sample_ids, methods: Sequence[str] = METHODS, full_retrain: bool = False,
               on_event: EventCallback | None = None, should_stop: Callable[[], bool] | None = None,
               score: bool = True) -> ForgetReport:
        """Serve a forget request: remove the samples from the plan and retrain exactly what they
        touched (section 5). The request is journaled in the ledger before any work and marked done
        after; a second request on the same run waits for this one. A should_stop() that turns true
        raises training.Cancelled between steps: the request stays journaled and is finished by
        finish_pending() (or the next open()). score=False leaves out the accuracy and membership
        scoring around the request (sweeps and benchmarks, which time the retraining alone)."""
        self._check_methods(methods)
        with writer_lock(self.store):
            self._reload_plan()
            ids = list(self.plan.check_request(sample_ids))
            missing = [r for r in ("teacher", *methods) if r not in self.trained_roles()]
            if missing:
                raise ValueError(f"run: {', '.join(missing)} not trained for the current plan; "
                                 "train the run before forgetting")
            roles = ["teacher", *methods]
            scope = retrain_scope(self.plan, ids)
            accuracy, membership = self._score(roles, ids) if score else ({}, {})
            request_id = self.ledger.next_request_id()
            started = {"sample_ids": ids, "methods": list(methods), "scope": scope.to_dict(), "score": score,
                       "predicted": predicted_cost(self.plan, scope), "hashes_before": self.param_hashes(roles),
                       "accuracy_before": accuracy, "membership_before": membership}
            self.ledger.append(request_id, "started", started)
            report = self._execute(request_id, started, on_event or ignore, should_stop=should_stop)
        if full_retrain:
            report.full_retrain = self.full_retrain(on_event=on_event, should_stop=should_stop)
            self.ledger.append(report.request_id, "full_retrain", {"full_retrain": report.full_retrain})
        return report

    def _execute(self, request_id: int, started: dict, on_event: EventCallback, resumed: bool = False,
                 should_stop: Callable[[], bool] | None = None) -> ForgetReport:
        """Apply a journaled request to the plan (once), bring every constituent up to date, record it
        with the check that the work done equals the work predicted."""
        ids, methods = started["sample_ids"], started["methods"]
        if not set(ids) <= self.plan.forgotten:
            self.plan = self.plan.without(ids)
            self.store.write_plan(self.plan)
        retrained: dict[str, dict[int, int]] = {}

        def watch(event) -> None:
            if getattr(event, "kind", "") == "training":
                retrained.setdefault(event.role, {}).setdefault(event.constituent, event.step)
            on_event(event)

        self._request_id = request_id
        try:
            costs = self.train(on_event=watch, should_stop=should_stop, methods=methods)
        finally:
            self._request_id = None
        roles = ["teacher", *methods]
        accuracy, membership = self._score(roles, ids) if started.get("score", True) else ({}, {})
        work = work_of_request(self, request_id, methods)
        cost_check = cost_matches(started["predicted"], work, roles)
        report = ForgetReport(
            request_id=request_id, sample_ids=ids, methods=list(methods), scope=started["scope"],
            predicted=started["predicted"], cost={role: c.to_dict() for role, c in costs.items()},
            retrained={r: {str(c): s for c, s in v.items()} for r, v in retrained.items()},
            reused={r: [c for rr, c in self.constituents([r]) if c not in retrained.get(r, {})] for r in roles},
            accuracy={"before": started["accuracy_before"], "after": accuracy},
            membership={"before": started["membership_before"], "after": membership},
            hashes={"before": started["hashes_before"], "after": self.param_hashes(roles)},
            resumed=resumed, work=work, cost_matches_prediction=cost_check["matches"],
        )
        done = {k: v for k, v in report.to_dict().items() if k in ("cost", "retrained", "reused", "resumed", "work")}
        self.ledger.append(request_id, "done", {**done, "accuracy_after": accuracy, "membership_after": membership,
                                                "hashes_after": report.hashes["after"],
                                                "cost_matches_prediction": cost_check["matches"],
                                                "cost_mismatches": cost_check["mismatches"]})
        return report

    def finish_pending(self, on_event: EventCallback | None = None) -> list[ForgetReport]:
        """Finish requests a dead process left journaled but not done. Skipped while another
        process holds the run's writer lock (it is still working on them)."""
        if not self.ledger.pending():
            return []
        with writer_lock(self.store, wait=False) as acquired:
            if not acquired:
                return []
            self._reload_plan()
            reports = []
            for request_id in self.ledger.pending():
                started = next(e["body"] for e in self.ledger.entries(request_id) if e["kind"] == "started")
                reports.append(self._execute(request_id, started, on_event or ignore, resumed=True))
            return reports

    def full_retrain(self, methods: Sequence[str] = ("purge",), on_event: EventCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> dict:
        """Retrain every teacher and the given student methods from scratch, in a scratch directory, on
        the dataset rebuilt without every forgotten sample: the reference cost. Reports cost, accuracy,
        and whether the result equals the unlearned run bit for bit."""
        scratch = scratch_dir(self, "full-retrain")
        try:
            reference = build_reference(self, scratch, sorted(self.plan.forgotten))
            start = time.perf_counter()
            costs = reference.train(on_event=on_event, should_stop=should_stop, methods=methods)
            seconds = time.perf_counter() - start
            roles = ["teacher", *methods]
            same = all(self.param_hashes(roles)[k] == v for k, v in reference.param_hashes(roles).items())
            return {"seconds": seconds, "sample_steps": sum(c.sample_steps for c in costs.values()),
                    "label_forwards": sum(c.label_forwards for c in costs.values()),
                    "cost": {r: c.to_dict() for r, c in costs.items()},
                    "accuracy": reference.evaluate()["accuracy"], "identical_to_unlearned": same}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def latest_request(self) -> int | None:
        done = [e["request_id"] for e in self.ledger.entries() if e["kind"] == "done"]
        return max(done) if done else None

    def verify(self, request_id: int | None = None, on_event: EventCallback | None = None,
               should_stop: Callable[[], bool] | None = None, affected_only: bool = False) -> dict:
        """Judge the latest request against a from-scratch run on the dataset rebuilt without every
        forgotten sample, placed and trained independently of this run's bookkeeping (verify.py).
        affected_only: retrain only the constituents the request affected in the reference (faster;
        the others are reused where the reference's own keys match)."""
        latest = self.latest_request()
        request_id = latest if request_id is None else request_id
        if latest is None:
            raise ValueError("request: this run has served no forget request yet; nothing to verify")
        if request_id != latest:
            raise ValueError(f"request: got {request_id}; only the latest request ({latest}) can be verified, "
                             "because later requests have changed the constituents since")
        with writer_lock(self.store):
            self._reload_plan()
            record = self.ledger.record(request_id)
            result = verify_request(self, record, on_event, should_stop, affected_only)
            self.ledger.append(request_id, "verified", result)
        return result


def _plan_role(role: str) -> str:
    return "teacher" if role == "teacher" else "student"
