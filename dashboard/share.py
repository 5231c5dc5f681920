"""A layout in the URL: PurgeConfig fields as query parameters, so a link reproduces a view.

Pure functions: parse what a link says, field by field, with a message naming the field, the value
in the link and what is allowed; the page then validates the whole config as usual.
"""

from __future__ import annotations

from dataclasses import fields

from purge_engine.config import AUTO_MODEL, STUDENT_DATA_MODES, PurgeConfig
from purge_engine.specs import DATASETS, MODELS

LAYOUT_FIELDS = ("dataset", "n_teachers", "n_students", "teacher_slices", "student_slices", "student_fraction",
                 "student_data", "epochs", "seed", "teacher_model", "student_model")
CHOICES = {"dataset": tuple(DATASETS), "student_data": STUDENT_DATA_MODES,
           "teacher_model": (AUTO_MODEL, *MODELS), "student_model": (AUTO_MODEL, *MODELS)}
MINIMUM = {"seed": 0, "student_fraction": 0.05}  # the Setup widgets' ranges; other counts start at 1
MAXIMUM = {"student_fraction": 1.0}
_TYPES = {f.name: type(getattr(PurgeConfig(), f.name)) for f in fields(PurgeConfig)}


def layout_to_query(config: PurgeConfig) -> dict[str, str]:
    return {name: str(getattr(config, name)) for name in LAYOUT_FIELDS}


def layout_from_query(params) -> tuple[dict, list[str]]:
    """(values the link sets, messages for the values it got wrong). Fields absent from the link are
    left out; a wrong field is reported and left out, never half applied."""
    values, errors = {}, []
    for name in LAYOUT_FIELDS:
        if name not in params:
            continue
        try:
            values[name] = _parse(name, str(params[name]))
        except ValueError as err:
            errors.append(str(err))
    return values, errors


def _parse(name: str, raw: str):
    if name in CHOICES:
        if raw not in CHOICES[name]:
            raise ValueError(f"{name}: got {raw!r} in the link, must be one of {', '.join(CHOICES[name])}")
        return raw
    kind = _TYPES[name]
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}: got {raw!r} in the link, must be {'an integer' if kind is int else 'a number'}") \
            from None
    low, high = MINIMUM.get(name, 1), MAXIMUM.get(name)
    if value < low or (high is not None and value > high):
        allowed = f"[{low}, {high}]" if high is not None else f"at least {low}"
        raise ValueError(f"{name}: got {raw!r} in the link, must be {allowed}")
    return value
