"""The command line and the Python that redo a run or a request: what the dashboard shows under
"Reproduce". No torch: the text is built from the config and the ids alone.

The shell form passes a flag only for a field that differs from PurgeConfig's default, through
the CLI's own flag names, so the command builds the same config (tests parse it back).
"""

from __future__ import annotations

from dataclasses import fields

from purge_engine.cli import flag_for
from purge_engine.config import PurgeConfig
from purge_engine.requests import format_ids


def _changed(config: PurgeConfig) -> list[str]:
    """Names of the fields that differ from the defaults, in declaration order."""
    defaults = PurgeConfig()
    return [f.name for f in fields(PurgeConfig) if getattr(config, f.name) != getattr(defaults, f.name)]


def reproduce_command(config: PurgeConfig, run: str, sample_ids=None, requests=()) -> str:
    """The shell commands that train this config into `run`, then serve each earlier request
    (lists of ids, in order), then forget sample_ids and verify."""
    flags = " ".join(f"{flag_for(name)} {getattr(config, name)}" for name in _changed(config))
    lines = [f"python -m purge_engine train --run {run} {flags}".rstrip()]
    lines += [f"python -m purge_engine forget --run {run} --samples {format_ids(ids)}" for ids in requests]
    if sample_ids:
        lines.append(f"python -m purge_engine forget --run {run} --samples {format_ids(sample_ids)} --verify")
    return "\n".join(lines)


def reproduce_snippet(config: PurgeConfig, run: str, sample_ids=None, requests=()) -> str:
    """The same in Python, through the engine's public face."""
    given = ", ".join(f"{name}={getattr(config, name)!r}" for name in _changed(config))
    lines = ["from purge_engine.config import PurgeConfig", "from purge_engine.experiment import Experiment", "",
             f"exp = Experiment.create(PurgeConfig({given}), {run!r})", "exp.train()",
             "print(exp.evaluate()['accuracy'])"]
    lines += [f"exp.forget({list(map(int, ids))})" for ids in requests]
    if sample_ids:
        lines += [f"report = exp.forget({list(map(int, sample_ids))})", "print(report.cost, report.predicted)",
                  "print(exp.verify()['exact'])"]
    return "\n".join(lines)
