"""A layout in the URL: PurgeConfig fields as query parameters, so a link reproduces a view.

Pure functions: parse what a link says, field by field, with a message naming the field, the value
in the link and what is allowed; the page then validates the whole config as usual.
"""

from __future__ import annotations

from dashboard.shared.fields import widget_range
from purge_engine import PurgeConfig, field_choices, field_kind, field_meta

LAYOUT_FIELDS = ("dataset", "n_teachers", "n_students", "teacher_slices", "student_slices", "student_fraction",
                 "student_data", "epochs", "seed", "teacher_model", "student_model")


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
    """The field's value from the link's text, within what PurgeConfig's metadata and the Setup widget allow."""
    if "choices" in field_meta(name):
        if raw not in field_choices(name):
            raise ValueError(f"{name}: got {raw!r} in the link, must be one of {', '.join(field_choices(name))}")
        return raw
    integer = field_kind(name) == "int"
    low, high = widget_range(name)  # a value the widget cannot show would break the page
    allowed = f"{'an integer' if integer else 'a number'} in [{low}, {high}]"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"{name}: got {raw!r} in the link, must be {allowed}") from None
    if not low <= value <= high:  # written so that nan is refused too
        raise ValueError(f"{name}: got {raw!r} in the link, must be {allowed}")
    return value
