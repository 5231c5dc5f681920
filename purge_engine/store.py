"""The run directory: where a run's config, plan, checkpoints, soft labels and ledger live (section 8).

    <run>/config.json
    <run>/plan.json
    <run>/checkpoints/<role>-<id>/step-<m>.safetensors + .json
    <run>/soft_labels/<method>-<student_id>/chunk-<l>.safetensors + .json
    <run>/ledger.sqlite
"""

from __future__ import annotations

from pathlib import Path

from purge_engine.checkpoints import CheckpointError, atomic_write_bytes, read_json
from purge_engine.config import PurgeConfig
from purge_engine.plan import Plan

DEFAULT_RUNS_DIR = Path("runs")


class RunStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    def checkpoint_stem(self, role: str, constituent: int, step: int) -> Path:
        return self.root / "checkpoints" / f"{role}-{constituent}" / f"step-{step}"

    def labels_stem(self, method: str, student_id: int, chunk_id: int) -> Path:
        return self.root / "soft_labels" / f"{method}-{student_id}" / f"chunk-{chunk_id}"

    # -- what it holds ----------------------------------------------------------------------
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def check_is_run(self) -> None:
        if not self.root.exists():
            raise ValueError(f"run: {self.root} does not exist; create it with `python -m purge_engine train "
                             f"--run {self.root}`")
        if not self.is_run():
            raise ValueError(f"run: {self.root} is not a run directory (it has no config.json)")

    def read_config(self) -> PurgeConfig:
        try:
            return PurgeConfig.from_dict(read_json(self.config_path, "run config"))
        except (CheckpointError, TypeError) as err:
            raise ValueError(f"run: {self.config_path} cannot be read: {err}") from None

    def write_config(self, config: PurgeConfig) -> None:
        atomic_write_bytes(self.config_path, (config.to_json() + "\n").encode())

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
