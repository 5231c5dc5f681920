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
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from purge_engine.checkpoints import content_key, environment, hash_ids, load_checkpoint, read_sidecar
from purge_engine.config import PurgeConfig
from purge_engine.data import DatasetBundle, load_dataset
from purge_engine.events import EventCallback, PhaseEvent, ignore
from purge_engine.models import build_model
from purge_engine.plan import METHODS, Plan, make_plan
from purge_engine.seeding import seed_for
from purge_engine.soft_labels import LabelCache, label_key, label_teachers
from purge_engine.store import RunStore
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
    def create(cls, config: PurgeConfig, run_dir: Path | str, download: bool = False) -> Experiment:
        """A new run in run_dir (or the run already there, when it holds the same config)."""
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
        plan = make_plan(config, bundle)
        store.root.mkdir(parents=True, exist_ok=True)
        store.write_plan(plan)
        store.write_config(config)  # last: config.json marks a complete run directory
        return cls(store, config, plan, bundle)

    @classmethod
    def open(cls, run_dir: Path | str) -> Experiment:
        store = RunStore(run_dir)
        store.check_is_run()
        config = store.read_config().validate()
        plan = store.read_plan()
        bundle = load_dataset(config.dataset, config.data_root)
        if plan.n_pool != bundle.n_train:
            raise ValueError(f"run: {store.root} was planned over {plan.n_pool} samples but {config.dataset} in "
                             f"{config.data_root} has {bundle.n_train}")
        return cls(store, config, plan, bundle)

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

    def chunk_label_key(self, method: str, student_id: int, chunk_id: int, plan: Plan | None = None,
                        teacher_keys: tuple[str, ...] | None = None) -> str:
        plan = plan or self.plan
        teacher_keys = teacher_keys or self.teacher_keys(plan)
        teachers = label_teachers(plan, method, student_id, chunk_id)
        ids = np.concatenate(plan.student_shards[student_id][chunk_id])
        return label_key(method, tuple(teacher_keys[t] for t in teachers), ids, self.config.temperature)

    def student_job(self, method: str, student_id: int, plan: Plan | None = None,
                    teacher_keys: tuple[str, ...] | None = None) -> ConstituentJob:
        plan = plan or self.plan
        teacher_keys = teacher_keys or self.teacher_keys(plan)
        chunk_keys = [self.chunk_label_key(method, student_id, c, plan, teacher_keys)
                      for c in range(plan.n_chunks(student_id))]
        parent = content_key(kind="init", role="student", constituent=student_id, seed=self.config.seed,
                             model=self.config.student_arch)
        steps = []
        for m in range(plan.student_steps(student_id)):
            chunk_id, _ = plan.chunk_and_slice(m)
            ids = plan.student_step_data(student_id, m)
            epochs = plan.student_epochs[student_id][m]
            labels = tuple(chunk_keys[: chunk_id + 1])
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
        labels = LabelCache(self.store, self._teacher_for_labels, self.bundle.train_x, self.config.temperature,
                            self.device, on_event)
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
        """Inputs and (soft labels, true labels) of a student step: whole chunks before the current
        one, then the current chunk's first slices (its ids are a prefix of the chunk's ids)."""
        plan, x, y = self.plan, self.bundle.train_x, self.bundle.train_y

        def step_data(spec: StepSpec):
            chunk_id, _ = plan.chunk_and_slice(spec.step)
            soft = []
            for c in range(chunk_id + 1):
                chunk_ids = np.concatenate(plan.student_shards[student_id][c])
                teachers = label_teachers(plan, method, student_id, c)
                soft.append(labels.get(method, student_id, c, teachers, spec.label_keys[c], chunk_ids))
            index = self._index(spec.ids)
            targets = torch.cat(soft)[: spec.ids.size]
            return x[index], (targets, y[index])

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

    def aggregate(self, probs: list[torch.Tensor]) -> torch.Tensor:
        """Ensemble prediction (n,) from per-constituent softmax outputs (section 4.8)."""
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
            accuracy[role] = _accuracy(self.aggregate(probs), labels)
            constituents[role] = [_accuracy(p.argmax(1), labels) for p in probs]
        return {"accuracy": accuracy, "constituents": constituents, "samples": int(labels.numel())}

    def parameters(self, role: str, constituent: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.load_constituent(role, constituent).state_dict().items()}


def _accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    if labels.numel() == 0:
        return float("nan")
    return float((predicted == labels).float().mean())
