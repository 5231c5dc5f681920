"""PurgeConfig: every knob of a run, validated once, written as JSON beside what it produced.

CLI flags and dashboard widgets both build this object; defaults live only here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields

from purge_engine.specs import DATASETS, MEMORY_FORMATS, MODELS, PREPROCESSING, model_fits

STUDENT_DATA_MODES = ("overlap", "disjoint")
AGGREGATIONS = ("mean", "vote")
DEVICES = ("auto", "cpu", "cuda")
AUTO_MODEL = "auto"
MAX_THREADS = 256

# Fields that say where things live or how predictions are combined, not what is trained:
# left out of the fingerprint, so checkpoints stay valid when they change.
_NOT_FINGERPRINTED = ("data_root", "aggregation")


@dataclass(frozen=True)
class PurgeConfig:
    dataset: str = "digits"
    data_root: str = "data"
    n_teachers: int = 8  # N_t
    n_students: int = 2  # N_s, at most N_t
    teacher_slices: int = 2  # r_t, slices per teacher shard
    student_slices: int = 2  # r, slices per student chunk
    teacher_fraction: float = 1.0  # share of the teacher pool used as D^T
    student_fraction: float = 1.0  # share of the pool used as D^S
    student_data: str = "overlap"  # "overlap": D^S drawn from the same pool; "disjoint": held out from teachers
    epochs: int = 20  # e, the SISA epoch budget per constituent (section 4.6)
    batch_size: int = 32
    teacher_lr: float = 2e-3
    student_lr: float = 2e-3
    temperature: float = 2.0  # T of the soft labels
    alpha: float = 0.0  # weight of cross-entropy on true labels in the student loss
    teacher_model: str = AUTO_MODEL
    student_model: str = AUTO_MODEL
    aggregation: str = "mean"  # "mean" of softmax or majority "vote"
    seed: int = 0
    device: str = "auto"
    threads: int = 1  # torch threads per constituent, fixed for the run (0 means 1); parallelism comes
    # from running constituents side by side, not threads: 2 OpenMP threads on tiny kernels stall 20-50x
    # when another process holds a core
    memory_format: str = "channels_last"  # strides of image tensors: "channels_last" or "contiguous"

    # -- derived ---------------------------------------------------------------
    @property
    def teacher_arch(self) -> str:
        return DATASETS[self.dataset].teacher_model if self.teacher_model == AUTO_MODEL else self.teacher_model

    @property
    def student_arch(self) -> str:
        return DATASETS[self.dataset].student_model if self.student_model == AUTO_MODEL else self.student_model

    def pool_sizes(self, n_pool: int) -> tuple[int, int]:
        """(|D^T|, |D^S|) for a train pool of n_pool samples (section 4.1)."""
        n_student = _share(self.student_fraction, n_pool)
        teacher_base = n_pool - n_student if self.student_data == "disjoint" else n_pool
        return _share(self.teacher_fraction, teacher_base), n_student

    def max_chunks(self) -> int:
        """c_max: the most teachers any student is mapped to (section 4.3)."""
        return math.ceil(self.n_teachers / self.n_students)

    # -- validation ------------------------------------------------------------
    def validate(self, n_pool: int | None = None) -> PurgeConfig:
        """Raise ValueError naming the field, the value and the allowed range; return self when valid.

        n_pool: size of the train pool; defaults to the dataset's known size.
        """
        _check_choice("dataset", self.dataset, tuple(DATASETS))
        _check_int("n_teachers", self.n_teachers, 1, 100_000)
        _check_int("n_students", self.n_students, 1, self.n_teachers, "n_teachers")
        _check_int("teacher_slices", self.teacher_slices, 1, 10_000)
        _check_int("student_slices", self.student_slices, 1, 10_000)
        _check_fraction("teacher_fraction", self.teacher_fraction)
        _check_fraction("student_fraction", self.student_fraction)
        _check_choice("student_data", self.student_data, STUDENT_DATA_MODES)
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("batch_size", self.batch_size, 1, 1_000_000)
        _check_positive("teacher_lr", self.teacher_lr, 10.0)
        _check_positive("student_lr", self.student_lr, 10.0)
        _check_positive("temperature", self.temperature, 100.0)
        _check_range("alpha", self.alpha, 0.0, 1.0)
        _check_model("teacher_model", self.teacher_model, self.dataset)
        _check_model("student_model", self.student_model, self.dataset)
        _check_choice("aggregation", self.aggregation, AGGREGATIONS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_choice("device", self.device, DEVICES)
        _check_int("threads", self.threads, 0, MAX_THREADS)
        _check_choice("memory_format", self.memory_format, MEMORY_FORMATS)
        if not isinstance(self.data_root, str) or not self.data_root:
            raise ValueError(f"data_root: got {self.data_root!r}, must be a non-empty path")
        self._check_sizes(DATASETS[self.dataset].n_train if n_pool is None else n_pool)
        self._check_device_present()
        return self

    def _check_sizes(self, n_pool: int) -> None:
        if self.student_data == "disjoint" and self.student_fraction >= 1.0:
            raise ValueError(
                f"student_fraction: got {self.student_fraction}, must be in (0, 1) when student_data is "
                "'disjoint' (the teachers need the rest of the pool)"
            )
        n_teacher, n_student = self.pool_sizes(n_pool)
        min_teacher = self.n_teachers * self.teacher_slices
        if n_teacher < min_teacher:
            raise ValueError(
                f"n_teachers x teacher_slices: got {self.n_teachers} x {self.teacher_slices} = {min_teacher} "
                f"teacher slices, must be at most the {n_teacher} teacher samples of {self.dataset} "
                "(every slice needs a sample)"
            )
        min_student = self.n_students * self.max_chunks() * self.student_slices
        if n_student < min_student:
            raise ValueError(
                f"n_students x chunks x student_slices: got {self.n_students} x {self.max_chunks()} x "
                f"{self.student_slices} = {min_student} student slices, must be at most the {n_student} "
                f"student samples of {self.dataset} (every slice needs a sample)"
            )

    def _check_device_present(self) -> None:
        if self.device != "cuda":
            return
        import torch  # deferred: config stays importable without work

        if not torch.cuda.is_available():
            raise ValueError("device: got 'cuda', but no CUDA device is available here; use 'auto' or 'cpu'")

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> PurgeConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {', '.join(unknown)}; "
                             f"known fields are {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> PurgeConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> PurgeConfig:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """Stable 16-hex-digit hash of everything that decides what is trained."""
        identity = {k: v for k, v in self.to_dict().items() if k not in _NOT_FINGERPRINTED}
        identity["preprocessing"] = PREPROCESSING
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _share(fraction: float, n: int) -> int:
    return int(math.floor(fraction * n + 1e-9))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value, low: int, high: int, high_name: str | None = None) -> None:
    bound = f"{high_name}={high}" if high_name else str(high)
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name}: got {value!r}, must be an integer in [{low}, {bound}]")


def _check_range(name: str, value, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: got {value!r}, must be a number in [{low}, {high}]")


def _check_positive(name: str, value, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= high:
        raise ValueError(f"{name}: got {value!r}, must be a number in (0, {high}]")


def _check_fraction(name: str, value) -> None:
    _check_positive(name, value, 1.0)


def _check_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: got {value!r}, must be one of {', '.join(allowed)}")


def _check_model(name: str, value, dataset: str) -> None:
    _check_choice(name, value, (AUTO_MODEL, *MODELS))
    if value != AUTO_MODEL and not model_fits(value, DATASETS[dataset]):
        spec = DATASETS[dataset]
        fitting = [m for m in MODELS if model_fits(m, spec)]
        raise ValueError(
            f"{name}: got {value!r}, which does not take {dataset}'s {spec.channels}x{spec.height}x{spec.width} "
            f"inputs; must be one of {', '.join([AUTO_MODEL, *fitting])}"
        )


# Named layouts for demos and lessons: overrides of the PurgeConfig defaults.
PRESETS: dict[str, dict] = {
    "paper MNIST: 32 teachers": {"dataset": "mnist-5k", "n_teachers": 32, "n_students": 8, "teacher_slices": 1,
                                 "student_slices": 1, "epochs": 10},
    "classroom: 4 teachers, 2 students": {"n_teachers": 4, "n_students": 2, "teacher_slices": 2,
                                          "student_slices": 2, "epochs": 10, "student_data": "disjoint",
                                          "student_fraction": 0.5},
    "many slices": {"n_teachers": 8, "n_students": 2, "teacher_slices": 4, "student_slices": 4, "epochs": 24},
}
