"""PURGE Explorer engine: SISA teachers, PURGE students, exact forget requests.

A plain library: importing it does no work and never imports Streamlit. Its public face, `__all__`, is
what the clients (the dashboard, notebooks) import: `from purge_engine import Experiment, make_plan`.
Each name is looked up in its module on first use (PEP 562), so `import purge_engine` stays light and
the planning side (`python -m purge_engine plan`) never loads torch.
"""

import importlib

__version__ = "0.1.0"

# module -> the names it lends the public face. To add a name, add it to its module's tuple.
_NAMES = {
    "audit": ("memorisation", "report"),
    "advantage": ("why",),
    "canaries": ("CANARY_TEACHER", "canary_ids", "planted_labels"),
    "check": ("check_run",),
    "config": ("AUTO_LANES", "AUTO_MODEL", "LANE_LIMIT", "PRESETS", "PurgeConfig", "field_choices", "field_help",
               "field_kind", "field_label", "field_meta", "field_range"),
    "datasets.readers": ("DatasetBundle", "DatasetUnavailable", "load_dataset"),
    "eta": ("calibrate", "job_steps", "predicted_seconds", "training_seconds"),
    "events": ("Cancelled", "Event", "FULL_RETRAIN", "LabelEvent", "PhaseEvent", "StepEvent", "TotalEvent"),
    "experiment": ("Experiment",),
    "rundir.files": ("CheckpointError", "RunDamaged"),
    "rundir.manifest": ("manifest_path",),
    "rundir.names": ("ConstituentName",),
    "progress": ("CELL_OF_EVENT", "DONE", "KEPT", "PENDING", "Progress", "RESTORED", "RETRAINING"),
    "request_plan": ("RequestPlan", "plan_request"),
    "plan": ("FULL_RETRAIN_METHODS", "METHODS", "Plan", "RetrainScope", "epoch_warnings", "job_sample_steps",
             "make_plan", "predicted_cost", "retrain_scope", "scope_for_changes", "training_cost"),
    "reproduce": ("reproduce_command", "reproduce_snippet"),
    "requests": ("parse_ids",),
    "run": ("Run", "device_label"),
    "simulate": ("DISTRIBUTIONS", "MODES", "StreamResult", "draw_requests", "simulate_stream"),
    "datasets.sources": ("DATASETS",),
    "datasets.specs": ("MODELS", "model_fits"),
    "storage": ("storage_estimate",),
    "rundir.lock": ("run_is_busy",),
    "rundir.store": ("DEFAULT_RUNS_DIR", "RunStore", "list_runs", "run_dir_under"),
    "sweep": ("AXES", "MAX_REQUESTS", "SweepGrid", "list_sweeps", "load_sweep", "predicted_sample_steps", "run_sweep",
              "sweeps_dir"),
    "vocabulary": ("chunk_label", "constituent_label", "student_label", "teacher_label", "teacher_names", "title",
                   "titles"),
}
# Modules lent whole: `from purge_engine import theory` then `theory.speedup(...)`. A module's own name is never
# lent for one of its functions (`advantage` is the module): once imported, the module would shadow it.
_MODULES = {"advantage": "advantage", "execution_choice": "execution.choice", "recipes": "recipes",
            "theory": "theory", "userdata": "datasets.userdata", "vocabulary": "vocabulary"}  # name -> module
_HOME = {name: module for module, names in _NAMES.items() for name in names}

__all__ = sorted([*_HOME, *_MODULES])


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{_MODULES[name]}")
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
