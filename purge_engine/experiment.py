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

from purge_engine.checkpoints import content_key, environment, hash_ids, load_checkpoint, read_sidecar
from purge_engine.config import PurgeConfig
from purge_engine.data import DatasetBundle, load_dataset
from purge_engine.events import EventCallback, PhaseEvent, ignore
from purge_engine.forget import ForgetReport, compare_parameters, membership_check, sample_losses, sample_sets
from purge_engine.forget import accuracy_of as _accuracy_of
from purge_engine.models import build_model
from purge_engine.plan import METHODS, Plan, make_plan, predicted_cost, retrain_scope
from purge_engine.seeding import seed_for
from purge_engine.soft_labels import LabelCache, label_key, label_teachers
from purge_engine.store import Ledger, RunStore, writer_lock
from purge_engine.training import (
    ConstituentJob,
    Cost,
    StepSpec,
    student_loss,
    teacher_loss,
    train_constituent,
)
from purge_engine.training import predict_proba as _predict_proba

MAX_DEFAULT_THREADS = 4


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
    """Fix what 'auto' leaves open, once, at creation: the thread count is part of a run's identity."""
    if config.threads == 0:
        config = config.replace(threads=max(1, min(torch.get_num_threads(), MAX_DEFAULT_THREADS)))
    return config


def _config_difference(stored: PurgeConfig, given: PurgeConfig) -> str:
    diffs = [f"{k} is {v!r} there, {given.to_dict()[k]!r} here" for k, v in stored.to_dict().items()
             if k != "data_root" and given.to_dict()[k] != v]
    return "; ".join(diffs)


class Experiment:
    def __init__(self, store: RunStore, config: PurgeConfig, plan: Plan, bundle: DatasetBundle):
        self.store, self.config, self.plan = store, config, plan
        self.device = resolve_device(config.device)
        self.bundle = bundle.to(self.device)
        self._teacher_cache: dict[int, nn.Module] = {}

    # -- create / open ---------------------------------------------------------------------
    @classmethod
    def create(cls, config: PurgeConfig, run_dir: Path | str, download: bool = False,
               plan: Plan | None = None) -> Experiment:
        """A new run in run_dir (or the run already there, when it holds the same config).

        plan: train on this plan instead of a fresh one (a from-scratch reference run on a plan
        that has forgotten samples, as verification and full retraining use)."""
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
        bundle = load_dataset(config.dataset, config.data_root, download=download)
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
        bundle = load_dataset(config.dataset, config.data_root)
        if plan.n_pool != bundle.n_train:
            raise ValueError(f"run: {store.root} was planned over {plan.n_pool} samples but {config.dataset} in "
                             f"{config.data_root} has {bundle.n_train}")
        exp = cls(store, config, plan, bundle)
        if finish_pending:
            exp.finish_pending()
        return exp

    # -- keys: what every checkpoint must hold, computed from the plan -----------------------
    def _meta(self) -> dict:
        return {"seed": self.config.seed, "config_fingerprint": self.config.fingerprint(),
                "environment": environment(self.device)}

    def teacher_job(self, teacher_id: int, plan: Plan | None = None) -> ConstituentJob:
        plan = plan or self.plan
        parent = content_key(kind="init", role="teacher", constituent=teacher_id, seed=self.config.seed,
                             model=self.config.teacher_arch)
        steps = []
        for m in range(plan.teacher_slices):
            ids = plan.teacher_step_data(teacher_id, m)
            parent = content_key(kind="teacher", config=self.config.fingerprint(), constituent=teacher_id, step=m,
                                 ids=hash_ids(ids), epochs=plan.teacher_epochs[m], parent=parent)
            steps.append(StepSpec(m, ids, plan.teacher_epochs[m], parent))
        return ConstituentJob("teacher", "teacher", teacher_id, tuple(steps), self._meta())

    def teacher_keys(self, plan: Plan | None = None) -> tuple[str, ...]:
        """The key of each teacher's final checkpoint: its fingerprint for the labels it gives."""
        return tuple(self.teacher_job(i, plan).steps[-1].key for i in range(self.config.n_teachers))

    def slice_label_key(self, method: str, student_id: int, chunk_id: int, slice_id: int,
                        plan: Plan | None = None, teacher_keys: tuple[str, ...] | None = None) -> str:
        """Key of the soft labels of one slice: its labelling teachers' keys and its sample ids."""
        plan = plan or self.plan
        teacher_keys = teacher_keys or self.teacher_keys(plan)
        teachers = label_teachers(plan, method, student_id, chunk_id)
        ids = plan.student_shards[student_id][chunk_id][slice_id]
        return label_key(method, tuple(teacher_keys[t] for t in teachers), ids, self.config.temperature)

    def student_job(self, method: str, student_id: int, plan: Plan | None = None,
                    teacher_keys: tuple[str, ...] | None = None) -> ConstituentJob:
        plan = plan or self.plan
        teacher_keys = teacher_keys or self.teacher_keys(plan)
        slice_keys = {(c, j): self.slice_label_key(method, student_id, c, j, plan, teacher_keys)
                      for c in range(plan.n_chunks(student_id)) for j in range(plan.student_slices)}
        parent = content_key(kind="init", role="student", constituent=student_id, seed=self.config.seed,
                             model=self.config.student_arch)
        steps = []
        for m in range(plan.student_steps(student_id)):
            ids = plan.student_step_data(student_id, m)
            epochs = plan.student_epochs[student_id][m]
            labels = tuple(slice_keys[position] for position in plan.student_step_slices(student_id, m))
            parent = content_key(kind=method, config=self.config.fingerprint(), constituent=student_id, step=m,
                                 ids=hash_ids(ids), epochs=epochs, labels=list(labels), parent=parent)
            steps.append(StepSpec(m, ids, epochs, parent, labels))
        return ConstituentJob(method, "student", student_id, tuple(steps), self._meta())

    # -- models --------------------------------------------------------------------------------
    def new_teacher(self, teacher_id: int) -> nn.Module:
        seed = seed_for(self.config.seed, "teacher-init", teacher_id)
        return build_model(self.config.teacher_arch, self.bundle.spec, seed)

    def new_student(self, student_id: int) -> nn.Module:
        # Every student method starts student k from the same seeded init: a fair comparison,
        # and no method is warm-started from another's training.
        seed = seed_for(self.config.seed, "student-init", student_id)
        return build_model(self.config.student_arch, self.bundle.spec, seed)

    def load_constituent(self, role: str, constituent: int) -> nn.Module:
        """The constituent's final checkpoint as an eval() model; CheckpointError if it is not current."""
        job = self.teacher_job(constituent) if role == "teacher" else self.student_job(role, constituent)
        last = job.steps[-1]
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

    def _index(self, ids: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(ids, dtype=torch.long, device=self.device)

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
        x, y = self.bundle.train_x, self.bundle.train_y

        def step_data(spec: StepSpec):
            index = self._index(spec.ids)
            return x[index], (y[index],)

        for i in range(self.config.n_teachers):
            cost.add(train_constituent(self.teacher_job(i), self.store, lambda i=i: self.new_teacher(i), step_data,
                                       teacher_loss, self.config.batch_size, self.config.teacher_lr,
                                       self.config.seed, self.device, on_event, should_stop))
        return cost

    def _train_students(self, method: str, on_event, should_stop) -> Cost:
        on_event(PhaseEvent("phase", f"students:{method}"))
        labels = LabelCache(self.store, self._teacher_for_labels, self.bundle.train_x, self.bundle.spec.n_classes,
                            self.config.temperature, self.device, on_event)
        loss = student_loss(self.config.temperature, self.config.alpha)
        teacher_keys = self.teacher_keys()
        cost = Cost()
        for k in range(self.config.n_students):
            job = self.student_job(method, k, teacher_keys=teacher_keys)
            step_data = self._student_step_data(method, k, labels)
            cost.add(train_constituent(job, self.store, lambda k=k: self.new_student(k), step_data, loss,
                                       self.config.batch_size, self.config.student_lr, self.config.seed,
                                       self.device, on_event, should_stop))
        cost.label_forwards += labels.label_forwards
        cost.seconds += labels.seconds
        return cost

    def _student_step_data(self, method: str, student_id: int, labels: LabelCache):
        """Inputs and (soft labels, true labels) of a student step, slice by slice in plan order."""
        plan, x, y = self.plan, self.bundle.train_x, self.bundle.train_y

        def step_data(spec: StepSpec):
            soft = [labels.get(method, student_id, c, j, label_teachers(plan, method, student_id, c), key,
                               plan.student_shards[student_id][c][j])
                    for (c, j), key in zip(plan.student_step_slices(student_id, spec.step), spec.label_keys,
                                           strict=True)]
            index = self._index(spec.ids)
            return x[index], (torch.cat(soft), y[index])

        return step_data

    # -- evaluation ----------------------------------------------------------------------------------
    def is_current(self, role: str, constituent: int) -> bool:
        """True when the constituent's final checkpoint holds the key the plan asks for."""
        job = self.teacher_job(constituent) if role == "teacher" else self.student_job(role, constituent)
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

    def aggregate(self, probs: list[torch.Tensor], role: str = "teacher") -> torch.Tensor:
        """Ensemble prediction (n,) from per-constituent softmax outputs (section 4.8). Empty
        constituents (every sample forgotten) take no part; with none left, class 0 for all."""
        n = probs[0].shape[0]
        probs = [p for c, p in enumerate(probs) if not self.plan.is_empty(_plan_role(role), c)]
        if not probs:
            return torch.zeros(n, dtype=torch.long, device=self.device)
        if self.config.aggregation == "vote":
            votes = torch.stack([p.argmax(1) for p in probs])  # (constituents, n)
            counts = torch.nn.functional.one_hot(votes, probs[0].shape[1]).sum(0)
            return counts.argmax(1)  # ties go to the lowest class id
        return torch.stack(probs).mean(0).argmax(1)

    def evaluate(self, inputs: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """Accuracy (fractions in [0, 1]) of the teacher ensemble, each trained student method's
        ensemble, and every single constituent, on the test split unless inputs are given."""
        inputs = self.bundle.test_x if inputs is None else inputs
        labels = self.bundle.test_y if labels is None else labels
        roles = self.trained_roles()
        if "teacher" not in roles:
            raise ValueError(f"run: {self.store.root} has no trained teachers yet; train it first")
        accuracy, constituents = {}, {}
        for role in roles:
            probs = self.constituent_probs(role, inputs)
            accuracy[role] = _accuracy(self.aggregate(probs, role), labels)
            constituents[role] = [_accuracy(p.argmax(1), labels) for p in probs]
        return {"accuracy": accuracy, "constituents": constituents, "samples": int(labels.numel())}

    def parameters(self, role: str, constituent: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.load_constituent(role, constituent).state_dict().items()}

    def ensemble_probs(self, role: str, inputs: torch.Tensor) -> torch.Tensor:
        """Mean softmax (n, classes) over the role's non-empty constituents; uniform when none is left."""
        probs = [p for c, p in enumerate(self.constituent_probs(role, inputs))
                 if not self.plan.is_empty(_plan_role(role), c)]
        if not probs:
            n_classes = self.bundle.spec.n_classes
            return torch.full((inputs.shape[0], n_classes), 1.0 / n_classes, device=inputs.device)
        return torch.stack(probs).mean(0)

    # -- forget requests -----------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store.ledger_path)

    def _constituents(self, roles) -> list[tuple[str, int]]:
        return [(role, c) for role in roles
                for c in range(self.config.n_teachers if role == "teacher" else self.config.n_students)]

    def _param_hashes(self, roles) -> dict[str, str]:
        hashes = {}
        for role, c in self._constituents(roles):
            job = self.teacher_job(c) if role == "teacher" else self.student_job(role, c)
            meta = read_sidecar(self.store.checkpoint_stem(role, c, job.steps[-1].step)) or {}
            hashes[f"{role}-{c}"] = meta.get("param_hash")
        return hashes

    def _score(self, roles, forgotten: list[int]) -> tuple[dict, dict]:
        """Accuracy on test / retained / forgotten samples and the membership check, per role."""
        sets = sample_sets(self.bundle, self.plan, forgotten, self.config.seed).sets
        accuracy, membership = {}, {}
        for role in roles:
            probs = {name: self.ensemble_probs(role, x) for name, (x, _) in sets.items()}
            accuracy[role] = {name: _accuracy_of(probs[name], y) for name, (_, y) in sets.items()}
            membership[role] = membership_check({name: sample_losses(probs[name], y) for name, (_, y) in sets.items()})
        return accuracy, membership

    def _reload_plan(self) -> None:
        self.plan = self.store.read_plan()

    def forget(self, sample_ids, methods: Sequence[str] = METHODS, full_retrain: bool = False,
               on_event: EventCallback | None = None, should_stop: Callable[[], bool] | None = None) -> ForgetReport:
        """Serve a forget request: remove the samples from the plan and retrain exactly what they
        touched (section 5). The request is journaled in the ledger before any work and marked done
        after; a second request on the same run waits for this one. A should_stop() that turns true
        raises training.Cancelled between steps: the request stays journaled and is finished by
        finish_pending() (or the next open())."""
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
            accuracy, membership = self._score(roles, ids)
            request_id = self.ledger.next_request_id()
            started = {"sample_ids": ids, "methods": list(methods), "scope": scope.to_dict(),
                       "predicted": predicted_cost(self.plan, scope), "hashes_before": self._param_hashes(roles),
                       "accuracy_before": accuracy, "membership_before": membership}
            self.ledger.append(request_id, "started", started)
            report = self._execute(request_id, started, on_event or ignore, should_stop=should_stop)
        if full_retrain:
            report.full_retrain = self.full_retrain(on_event=on_event, should_stop=should_stop)
            self.ledger.append(report.request_id, "full_retrain", {"full_retrain": report.full_retrain})
        return report

    def _execute(self, request_id: int, started: dict, on_event: EventCallback, resumed: bool = False,
                 should_stop: Callable[[], bool] | None = None) -> ForgetReport:
        """Apply a journaled request to the plan (once), bring every constituent up to date, record it."""
        ids, methods = started["sample_ids"], started["methods"]
        if not set(ids) <= self.plan.forgotten:
            self.plan = self.plan.without(ids)
            self.store.write_plan(self.plan)
        retrained: dict[str, dict[int, int]] = {}

        def watch(event) -> None:
            if getattr(event, "kind", "") == "training":
                retrained.setdefault(event.role, {}).setdefault(event.constituent, event.step)
            on_event(event)

        costs = self.train(on_event=watch, should_stop=should_stop, methods=methods)
        roles = ["teacher", *methods]
        accuracy, membership = self._score(roles, ids)
        report = ForgetReport(
            request_id=request_id, sample_ids=ids, methods=list(methods), scope=started["scope"],
            predicted=started["predicted"], cost={role: c.to_dict() for role, c in costs.items()},
            retrained={r: {str(c): s for c, s in v.items()} for r, v in retrained.items()},
            reused={r: [c for rr, c in self._constituents([r]) if c not in retrained.get(r, {})] for r in roles},
            accuracy={"before": started["accuracy_before"], "after": accuracy},
            membership={"before": started["membership_before"], "after": membership},
            hashes={"before": started["hashes_before"], "after": self._param_hashes(roles)},
            resumed=resumed,
        )
        done = {k: v for k, v in report.to_dict().items() if k in ("cost", "retrained", "reused", "resumed")}
        self.ledger.append(request_id, "done", {**done, "accuracy_after": accuracy, "membership_after": membership,
                                                "hashes_after": report.hashes["after"]})
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

    def _scratch(self, name: str) -> Path:
        path = self.store.root / "scratch" / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def full_retrain(self, methods: Sequence[str] = ("purge",), on_event: EventCallback | None = None,
                     should_stop: Callable[[], bool] | None = None) -> dict:
        """Retrain every teacher and the given student methods from scratch on the current plan, in a
        scratch directory: the reference cost. Reports cost, accuracy, and whether the result equals
        the unlearned run bit for bit."""
        scratch = self._scratch("full-retrain")
        try:
            reference = Experiment.create(self.config, scratch, plan=self.plan)
            start = time.perf_counter()
            costs = reference.train(on_event=on_event, should_stop=should_stop, methods=methods)
            seconds = time.perf_counter() - start
            roles = ["teacher", *methods]
            same = all(self._param_hashes(roles)[k] == v for k, v in reference._param_hashes(roles).items())
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
               should_stop: Callable[[], bool] | None = None) -> dict:
        """Retrain every constituent the request affected from scratch on the current (reduced) plan
        with the same seeds, and compare every parameter with torch.equal (section 6). Constituents
        outside the scope are unchanged by construction: their checkpoint keys are compared."""
        latest = self.latest_request()
        request_id = latest if request_id is None else request_id
        if latest is None:
            raise ValueError("request: this run has served no forget request yet; nothing to verify")
        if request_id != latest:
            raise ValueError(f"request: got {request_id}; only the latest request ({latest}) can be verified, "
                             "because later requests have changed the constituents since")
        record = self.ledger.record(request_id)
        with writer_lock(self.store):
            result = self._verify_scope(record, on_event or ignore, should_stop)
            self.ledger.append(request_id, "verified", result)
        return result

    def _verify_scope(self, record: dict, on_event: EventCallback, should_stop: Callable[[], bool] | None) -> dict:
        methods = record["methods"]
        affected = {"teacher": set(map(int, record["scope"]["teachers"]))}
        affected.update({m: set(map(int, record["scope"]["students"][m])) for m in methods})
        scratch = self._scratch("verify")
        try:
            reference = Experiment.create(self.config, scratch, plan=self.plan)
            self._lend_unaffected(reference, affected)
            start = time.perf_counter()
            reference.train(on_event=on_event, should_stop=should_stop, methods=methods)
            seconds = time.perf_counter() - start
            return self._compare(reference, affected, seconds)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _lend_unaffected(self, reference: Experiment, affected: dict[str, set[int]]) -> None:
        """Copy the final checkpoints of unaffected constituents into the reference run: their keys
        already match the reduced plan, so the reference reuses them and retrains only the rest."""
        for role, c in self._constituents(affected):
            if c in affected[role]:
                continue
            job = self.teacher_job(c) if role == "teacher" else self.student_job(role, c)
            for suffix in (".safetensors", ".json"):
                source = self.store.checkpoint_stem(role, c, job.steps[-1].step).with_suffix(suffix)
                target = reference.store.checkpoint_stem(role, c, job.steps[-1].step).with_suffix(suffix)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)

    def _compare(self, reference: Experiment, affected: dict[str, set[int]], seconds: float) -> dict:
        here = environment(self.device)
        rows, reasons = [], []
        for role, c in self._constituents(affected):
            if c not in affected[role]:
                continue
            job = self.teacher_job(c) if role == "teacher" else self.student_job(role, c)
            meta = read_sidecar(self.store.checkpoint_stem(role, c, job.steps[-1].step)) or {}
            recorded = meta.get("environment", {})
            reasons += [f"{role} {c}: {k} was {recorded.get(k)!r} when trained, {here[k]!r} now"
                        for k in here if recorded.get(k) != here[k]]
            rows.append({"role": role, "constituent": c, **compare_parameters(self.parameters(role, c),
                                                                              reference.parameters(role, c)),
                         "hash": meta.get("param_hash"), "reference_hash": reference._param_hashes([role])[
                             f"{role}-{c}"]})
        unaffected_same = all(self.is_current(role, c) for role, c in self._constituents(affected))
        equal = all(r["equal"] for r in rows) and unaffected_same
        return {"exact": equal and not reasons, "equal": equal, "constituents_compared": len(rows),
                "parameters_compared": sum(r["parameters"] for r in rows),
                "max_abs_diff": max((r["max_abs_diff"] for r in rows), default=0.0),
                "environment_differs": reasons, "reason": (
                    "exactness not claimed: " + "; ".join(reasons) if reasons else
                    "every affected constituent equals a from-scratch run on the reduced data, bit for bit"
                    if equal else "some parameters differ from the from-scratch run"),
                "seconds": seconds, "details": rows}


def _plan_role(role: str) -> str:
    return "teacher" if role == "teacher" else "student"


def _accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.numel() == 0:
        return float("nan")
    return float((predicted == labels).float().mean())
