"""PurgeConfig: every knob of a run, validated once, written as JSON beside what it produced.

CLI flags and dashboard widgets both build this object; defaults live only here. Each field also
carries its label, help sentence and allowed range or choices as dataclass metadata (`field_meta`),
which the CLI help, the dashboard widgets, the URL parser, the sweep grid and `validate()` read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields

from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.specs import MEMORY_FORMATS, MODELS, PREPROCESSING, model_fits

STUDENT_DATA_MODES = ("overlap", "disjoint")
AGGREGATIONS = ("mean", "vote")
DEVICES = ("auto", "cpu", "cuda")
AUTO_MODEL = "auto"
USER_NAME = "user:<hash>"  # how messages name an imported dataset (userdata.py)
MAX_THREADS = 256
# How a run is executed: chosen per command, never part of the fingerprint (executors.py, lanes.py).
EXECUTORS = ("local", "ray", "lanes", "auto")
MAX_TOP = 100_000  # most memorised samples an audit lists at most
LANE_LIMIT = 256  # lanes in one group: beyond this a tiny model's group is no faster, only bigger
AUTO_LANES = {"cpu": 4, "cuda": 32}  # W when none is asked for (bench_lanes.py: W = 4 fastest on 2 CPU cores)

# Fields that say where things live or how predictions are combined, not what is trained:
# left out of the fingerprint, so checkpoints stay valid when they change.
_NOT_FINGERPRINTED = ("data_root", "aggregation")
# Fields added after runs were stored, with the value every older run had: a config.json without one
# reads as that value, and the fingerprint leaves it out at that value (older checkpoints stay valid).
_ADDED_LATER = {"canaries": 0}


def _knob(default, label: str, help: str, **allowed):
    """A PurgeConfig field whose metadata says what it means and what it may be; CLI flags, dashboard
    widgets, the URL parser and validate() all read it (kind: int, float, str or path; min/max, with
    min_open for an excluded lower bound, max_field for a bound set by another field and step for a
    float widget's increment; or choices)."""
    return field(default=default, metadata={"label": label, "help": help, **allowed})


@dataclass(frozen=True)
class PurgeConfig:
    dataset: str = _knob("digits", "Dataset", "Dataset whose train split is the pool of sample ids.",
                         kind="str", choices=DATASETS, path_ok=True,
                         also=f"a dataset imported from your own file ({USER_NAME}, kept in datasets/ of the runs "
                         "folder or $PURGE_DATASETS_DIR; --dataset PATH imports a .npz, a .csv or a folder of "
                         "images, the same bytes under the same name)")
    data_root: str = _knob("data", "Data folder", "Folder holding the torchvision datasets (downloaded there when "
                           "the machine is online).", kind="path")
    n_teachers: int = _knob(8, "Teachers (N_t)", "N_t: SISA teachers, each trained only on its own shard of D^T.",
                            kind="int", min=1, max=100_000)
    n_students: int = _knob(4, "Students (N_s)", "N_s (at most N_t): students, each distilling a contiguous group "
                            "of teachers.", kind="int", min=1, max=100_000, max_field="n_teachers")
    teacher_slices: int = _knob(2, "Teacher slices (r_t)", "r_t: slices per teacher shard; a teacher trains slice "
                                "by slice, checkpointing each step.", kind="int", min=1, max=10_000)
    student_slices: int = _knob(2, "Student slices (r)", "r: slices per chunk of a student's shard; a student "
                                "checkpoints after each.", kind="int", min=1, max=10_000)
    teacher_fraction: float = _knob(1.0, "Teacher data (share of the pool)", "Share of the teacher pool used as "
                                    "the teachers' data D^T.", kind="float", min=0, min_open=True, max=1.0, step=0.05)
    student_fraction: float = _knob(0.3, "Student data (share of the pool)", "Share of the train pool the students "
                                    "learn from, D^S.", kind="float", min=0, min_open=True, max=1.0, step=0.05)
    student_data: str = _knob("disjoint", "Student data source", "overlap: D^S drawn from the teachers' pool, so a "
                              "sample can sit in a teacher shard and a student chunk; disjoint: D^S held out from the "
                              "teachers (so its share must be below 1).", kind="str", choices=STUDENT_DATA_MODES)
    epochs: int = _knob(20, "Epochs (e)", "e: epoch budget per constituent, spread over its slice steps (SISA, "
                        "section 4.6).", kind="int", min=1, max=10_000)
    batch_size: int = _knob(32, "Batch size", "Samples per gradient step.", kind="int", min=1, max=1_000_000)
    teacher_lr: float = _knob(2e-3, "Teacher learning rate", "Adam learning rate of the teachers.", kind="float",
                              min=0, min_open=True, max=10.0, step=1e-4)
    student_lr: float = _knob(2e-3, "Student learning rate", "Adam learning rate of the students.", kind="float",
                              min=0, min_open=True, max=10.0, step=1e-4)
    temperature: float = _knob(2.0, "Temperature (T)", "T: softmax temperature of the teachers' soft labels.",
                               kind="float", min=0, min_open=True, max=100.0, step=0.5)
    alpha: float = _knob(0.0, "Alpha", "Weight of cross-entropy on true labels in the student loss (0: KL to the "
                         "soft labels alone).", kind="float", min=0.0, max=1.0, step=0.05)
    teacher_model: str = _knob(AUTO_MODEL, "Teacher model", "Teacher architecture (auto: the dataset's default).",
                               kind="str", choices=(AUTO_MODEL, *MODELS), fits_dataset=True)
    student_model: str = _knob(AUTO_MODEL, "Student model", "Student architecture (auto: the dataset's default).",
                               kind="str", choices=(AUTO_MODEL, *MODELS), fits_dataset=True)
    aggregation: str = _knob("mean", "Aggregation", "How the constituents' predictions combine: mean of softmax or "
                             "majority vote.", kind="str", choices=AGGREGATIONS)
    seed: int = _knob(0, "Seed", "Every random choice (shards, init, shuffles) comes from (seed, role, position).",
                      kind="int", min=0, max=2**63 - 1)
    device: str = _knob("auto", "Device", "Where constituents train: auto (CUDA when present), cpu or cuda.",
                        kind="str", choices=DEVICES)
    # Parallelism comes from running constituents side by side, not threads: 2 OpenMP threads on tiny
    # kernels stall 20-50x when another process holds a core.
    threads: int = _knob(1, "Threads", "Torch CPU threads per constituent, fixed for the run (0 means 1).",
                         kind="int", min=0, max=MAX_THREADS)
    canaries: int = _knob(0, "Canaries", "Samples of Teacher 1's shard that also sit in Student 1's first chunk, "
                          "planted with a flipped label (chosen from the seed and each sample's id) to show what "
                          "leaks from a teacher through distillation and that forgetting removes it; needs "
                          "student_data 'overlap'.", kind="int", min=0, max=10_000)
    memory_format: str = _knob("channels_last", "Memory format", "Strides of image tensors: channels_last or "
                               "contiguous (part of what decides every bit).", kind="str", choices=MEMORY_FORMATS)

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
        self.validate_fields()
        self._check_sizes(DATASETS[self.dataset].n_train if n_pool is None else n_pool)
        self._check_device_present()
        return self

    def validate_fields(self) -> PurgeConfig:
        """Each field against its own metadata (kind, range or choices; a model must take the dataset's
        inputs), in field order; no pool sizes, no device probe. Returns self when every field is valid."""
        for f in fields(self):
            check_field(f.name, getattr(self, f.name), self)
        return self

    def _check_sizes(self, n_pool: int) -> None:
        if self.canaries and self.student_data != "overlap":
            raise ValueError(f"canaries: got {self.canaries}, must be 0 when student_data is "
                             f"{self.student_data!r} (a canary sits in a teacher shard and in a student's data, "
                             "so the students are queried at it: set student_data to 'overlap')")
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
    def from_dict(cls, data: dict, complete: bool = False) -> PurgeConfig:
        """The config a dict of fields names; fields it leaves out take their defaults, unless
        complete (a stored run's config.json, which must name every field it was trained with)."""
        known = [f.name for f in fields(cls)]
        if not isinstance(data, dict):
            raise ValueError(f"config: got a JSON {_json_type(data)}, must be an object of PurgeConfig fields "
                             f"({', '.join(known)})")
        unknown = sorted(str(k) for k in set(data) - set(known))
        if unknown:
            raise ValueError(f"config: unknown field(s) {', '.join(unknown)}; "
                             f"known fields are {', '.join(sorted(known))}")
        missing = [name for name in known if name not in data and name not in _ADDED_LATER]
        if complete and missing:
            raise ValueError(f"config: missing field(s) {', '.join(missing)}; a run's config must name every "
                             "field (a default filled in now may not be the one it was trained with)")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> PurgeConfig:
        try:
            data = json.loads(text)
        except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
            raise ValueError(f"config: not valid JSON ({err})") from None
        return cls.from_dict(data)

    def replace(self, **changes) -> PurgeConfig:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """Stable 16-hex-digit hash of everything that decides what is trained."""
        identity = {k: v for k, v in self.to_dict().items() if k not in _NOT_FINGERPRINTED
                    and not (k in _ADDED_LATER and v == _ADDED_LATER[k])}
        identity["preprocessing"] = PREPROCESSING
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _json_type(value) -> str:
    names = {list: "array", type(None): "null", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _share(fraction: float, n: int) -> int:
    return int(math.floor(fraction * n + 1e-9))


# -- field metadata: what each knob means and may be ---------------------------------------------
def field_meta(name: str) -> dict:
    """A PurgeConfig field's metadata: label, help, kind and its range (min, max) or choices."""
    for f in fields(PurgeConfig):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(f"PurgeConfig has no field {name!r}")


def field_help(name: str) -> str:
    return field_meta(name)["help"]


def field_label(name: str) -> str:
    return field_meta(name)["label"]


def field_kind(name: str) -> str:
    return field_meta(name)["kind"]


def field_range(name: str) -> tuple:
    """(min, max) of a numeric field; a bound set by another field (max_field) is that field's own max."""
    meta = field_meta(name)
    if "min" not in meta:
        raise ValueError(f"{name}: has choices, not a range")
    return meta["min"], meta["max"]


def field_choices(name: str) -> tuple[str, ...]:
    meta = field_meta(name)
    if "choices" not in meta:
        raise ValueError(f"{name}: has a range, not choices")
    return meta["choices"]


def allowed_text(name: str, high=None) -> str:
    """What a field may be, as error messages say it: "an integer in [1, 100000]", "one of mean, vote".
    high: a bound set by another field, written as that field's name and value."""
    meta = field_meta(name)
    if meta["kind"] == "path":
        return "a non-empty path"
    if "choices" in meta:
        return f"one of {', '.join(meta['choices'])}" + (f", or {meta['also']}" if "also" in meta else "")
    low, bound = meta["min"], meta["max"] if high is None else f"{meta['max_field']}={high}"
    opening = "(" if meta.get("min_open") else "["
    return f"{'an integer' if meta['kind'] == 'int' else 'a number'} in {opening}{low}, {bound}]"


def check_field(name: str, value, config: PurgeConfig | None = None) -> None:
    """ValueError "<name>: got <value>, must be <allowed>" when value breaks the field's metadata.
    config: the whole config, for bounds set by another field and the model-fits-dataset rule."""
    meta = field_meta(name)
    high = getattr(config, meta["max_field"]) if config is not None and "max_field" in meta else None
    if not _fits(meta, value, high):
        raise ValueError(f"{name}: got {value!r}, must be {allowed_text(name, high)}")
    if meta.get("fits_dataset") and config is not None:
        _check_model_fit(name, value, config.dataset)


def _fits(meta: dict, value, high=None) -> bool:
    kind = meta["kind"]
    if kind == "path":
        return isinstance(value, str) and bool(value)
    if "choices" in meta:
        return value in meta["choices"]
    if not (_is_int(value) or (kind == "float" and isinstance(value, float))):
        return False
    above_min = meta["min"] < value if meta.get("min_open") else meta["min"] <= value
    return above_min and value <= (meta["max"] if high is None else min(high, meta["max"]))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_model_fit(name: str, value, dataset: str) -> None:
    if value != AUTO_MODEL and not model_fits(value, DATASETS[dataset]):
        spec = DATASETS[dataset]
        fitting = [m for m in MODELS if model_fits(m, spec)]
        raise ValueError(
            f"{name}: got {value!r}, which does not take {dataset}'s {spec.shape_text} "
            f"inputs; must be one of {', '.join([AUTO_MODEL, *fitting])}"
        )


# Named layouts for demos and lessons: overrides of the PurgeConfig defaults.
PRESETS: dict[str, dict] = {
    # The defaults: 30% of digits held out for 4 students, so most clicked samples are teacher-side,
    # where PURGE retrains one student's tail and the baseline every student (median 2.4x, README).
    "demo: the defaults (teacher-side deletions)": {},
    # Every sample in a teacher shard and a student chunk: every request is student-side as well, where
    # PURGE's edge is at most 3R/(2R+1). Kept to show why the paper holds the students' data apart.
    "overlap: every sample in both sides": {"n_students": 2, "student_data": "overlap", "student_fraction": 1.0},
    "paper MNIST: 32 teachers": {"dataset": "mnist-5k", "n_teachers": 32, "n_students": 8, "teacher_slices": 1,
                                 "student_slices": 1, "epochs": 10},
    "classroom: 4 teachers, 2 students": {"n_teachers": 4, "n_students": 2, "teacher_slices": 2,
                                          "student_slices": 2, "epochs": 10, "student_data": "disjoint",
                                          "student_fraction": 0.5},
    # The paper's scale (60,000 training images, 32 teachers) on Fashion-MNIST, installed offline from Debian.
    "paper scale: 32 teachers on 60,000 images": {"dataset": "fashion-mnist", "n_teachers": 32, "n_students": 8,
                                                  "epochs": 2},
    "many slices": {"n_teachers": 8, "n_students": 2, "teacher_slices": 4, "student_slices": 4, "epochs": 24},
}
