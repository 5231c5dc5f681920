"""A run directory's paths and its two defining files, config.json and plan.json (section 8), and the
names runs take under a runs directory. The files inside are named by names.py; the writer lock is
lock.py's, the ledger ledger.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

from purge_engine.config import PurgeConfig
from purge_engine.plan import Plan
from purge_engine.rundir import sidecar
from purge_engine.rundir.atomic import atomic_write_bytes, json_text
from purge_engine.rundir.files import CheckpointError, read_json
from purge_engine.rundir.names import (
    CONFIG_NAME,
    LEDGER_NAME,
    LOCK_NAME,
    PLAN_NAME,
    SIDECAR_SUFFIX,
    CheckpointName,
    LabelName,
)

DEFAULT_RUNS_DIR = Path("runs")
ENVIRONMENT_KEY = "environment"  # in config.json: the executor and worker count, not part of the fingerprint
MAX_RUN_NAME = 100
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # ASCII only: no separator, never "." or ".."
# Folders of the runs directory that hold other things than one run: imported datasets, sweeps, the
# Learn page's lesson runs. A run may not take their names (it would train into them, or a reset of a
# lesson could delete it).
RESERVED_RUN_NAMES = ("datasets", "sweeps", "lessons")


# -- run names (the dashboard's runs are names under its runs directory) ---------------------------
def check_run_name(name) -> str:
    """A run name: 1 to MAX_RUN_NAME characters of ASCII letters, digits, '.', '_' and '-', starting with
    a letter or digit (so never a path, '..' or a hidden name). ValueError naming run_name otherwise."""
    allowed = (f"must be 1 to {MAX_RUN_NAME} characters of letters, digits, '.', '_' and '-', starting with a "
               "letter or digit")
    if not isinstance(name, str) or not name:
        raise ValueError(f"run_name: got an empty name, {allowed}")
    if len(name) > MAX_RUN_NAME:
        raise ValueError(f"run_name: got {len(name)} characters, {allowed}")
    if not _RUN_NAME.fullmatch(name):
        raise ValueError(f"run_name: got {name[:40]!r}, {allowed}")
    if name.lower() in RESERVED_RUN_NAMES:
        raise ValueError(f"run_name: got {name!r}, which the runs directory keeps for other things "
                         f"({', '.join(RESERVED_RUN_NAMES)}); choose another name")
    return name


def run_dir_under(runs_dir: Path | str, name) -> Path:
    """runs_dir/name for a valid run name, refused (ValueError) when it would resolve anywhere but
    directly under runs_dir (a symlink planted there, say)."""
    check_run_name(name)
    root = Path(runs_dir).resolve()
    if (root / name).resolve().parent != root:
        raise ValueError(f"run_name: {name!r} resolves outside {root}; a run must be a directory directly under it")
    return Path(runs_dir) / name


class RunStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def plan_path(self) -> Path:
        return self.root / PLAN_NAME

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_NAME

    @property
    def lock_path(self) -> Path:
        """The writer lock's file; absent until the first train or forget request takes the lock."""
        return self.root / LOCK_NAME

    def stem(self, name: CheckpointName | LabelName) -> Path:
        """<run>/<area>/<folder>/<stem> of a stored file, without its suffix (.safetensors or .json)."""
        return self.inside(name.AREA, name.folder) / name.stem

    def checkpoint_stem(self, role: str, constituent: int, step: int) -> Path:
        return self.stem(CheckpointName(role, constituent, step))

    def labels_stem(self, method: str, student_id: int, chunk_id: int, slice_id: int, teacher_id: int) -> Path:
        """One teacher's softmax outputs over one student slice, as one method's labels use them."""
        return self.stem(LabelName(method, student_id, chunk_id, slice_id, teacher_id))

    def inside(self, *folders: str) -> Path:
        """root/folders..., refused (ValueError) when any of those folders is a symbolic link: nothing in a
        run directory is read or written through a link (a linked folder would let a repair write outside
        the run, on the shared storage scale-out recommends above all)."""
        path = self.root
        for folder in folders:
            path = path / folder
            if path.is_symlink():
                raise ValueError(f"run: {path} is a symbolic link; a run directory opens nothing through a link "
                                 "(replace it with the folder itself, or `check --repair` after removing it)")
        return path

    # -- what it holds ----------------------------------------------------------------------
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def check_is_run(self) -> None:
        if not self.root.exists():
            raise ValueError(f"run: {self.root} does not exist; create it with `python -m purge_engine train "
                             f"--run {self.root}`")
        if not self.is_run():
            raise ValueError(f"run: {self.root} is not a run directory (it has no {CONFIG_NAME})")

    def read_config(self) -> PurgeConfig:
        """The run's config, complete: a field missing from config.json is refused, never filled with
        today's default (the stored config decided every checkpoint)."""
        try:
            data = read_json(self.config_path, "run config")
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k != ENVIRONMENT_KEY}
            return PurgeConfig.from_dict(data, complete=True)  # refuses a list or null too, with a sentence
        except (CheckpointError, TypeError, AttributeError, ValueError) as err:
            raise ValueError(f"run: {self.config_path} cannot be read: {err}") from None

    def write_config(self, config: PurgeConfig, environment: dict | None = None) -> None:
        """config.json: the config, plus (outside the fingerprint) how the run was last executed."""
        data = config.to_dict() | ({ENVIRONMENT_KEY: environment} if environment else {})
        atomic_write_bytes(self.config_path, json_text(data).encode())

    def read_environment(self) -> dict:
        """How the run was last trained ({"executor", "workers", "path", ...}); empty before its first training."""
        try:
            return read_json(self.config_path, "run config").get(ENVIRONMENT_KEY, {})
        except (CheckpointError, AttributeError):
            return {}

    def first_checkpoint_path(self) -> str | None:
        """The execution path in the first teacher checkpoint's sidecar (a run recorded before the execution
        record named its path); None when there is none."""
        first = CheckpointName("teacher", 0, 0)
        try:
            meta = read_json(self.stem(first).with_suffix(SIDECAR_SUFFIX), f"checkpoint {first}")
            return sidecar.execution_path(meta)
        except (CheckpointError, AttributeError):
            return None

    def record_execution(self, config: PurgeConfig, execution: dict) -> None:
        if self.read_environment() != execution:
            self.write_config(config, execution)

    def read_plan(self) -> Plan:
        try:
            return Plan.from_dict(read_json(self.plan_path, "run plan"))
        except (CheckpointError, KeyError, TypeError) as err:
            raise ValueError(f"run: {self.plan_path} cannot be read: {err}") from None

    def write_plan(self, plan: Plan) -> None:
        atomic_write_bytes(self.plan_path, plan.to_json().encode())


def list_runs(runs_dir: Path | str = DEFAULT_RUNS_DIR) -> list[Path]:
    """Run directories under runs_dir, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if RunStore(p).is_run()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
