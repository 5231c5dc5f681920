"""Widget arguments for PurgeConfig fields, read from the fields' metadata (purge_engine.config): label,
help, range and choices live once, on the field. Pure: no st.* here, so the ranges are testable directly.
"""

from __future__ import annotations

import re

from purge_engine import field_choices, field_help, field_label, field_meta, field_range

JS_MAX_INT = 2**53 - 1  # a browser's number input holds integers exactly up to here (Streamlit refuses more)


def widget_help(name: str, detail: str = "") -> str:
    """The field's help sentence, a page's detail after it, and the field's name."""
    return f"{' '.join(filter(None, (field_help(name), detail)))}\n\nConfig field: `{name}`."


def widget_range(name: str) -> tuple:
    """(min_value, max_value) a widget offers: the field's range, with an excluded lower bound raised by one
    step (a slider cannot leave out its end) and integers capped at what a browser holds exactly."""
    low, high = field_range(name)
    meta = field_meta(name)
    if meta["kind"] == "int":
        return low, min(high, JS_MAX_INT)
    return float(low + meta["step"] if meta.get("min_open") else low), float(high)


def number_kwargs(name: str) -> dict:
    """label, min_value, max_value, step and help of st.number_input or st.slider for a numeric field."""
    low, high = widget_range(name)
    return {"label": field_label(name), "min_value": low, "max_value": high, "step": field_meta(name).get("step", 1),
            "help": widget_help(name)}


def choice_kwargs(name: str) -> dict:
    """label, options and help of st.selectbox or st.radio for a field with choices."""
    return {"label": field_label(name), "options": list(field_choices(name)), "help": widget_help(name)}


def on_screen(message: str) -> str:
    """A config error as the sidebar names things: each config field it names ("n_students x chunks")
    gets the widget's label beside it ("Students (N_s) [n_students] x chunks"), so the user knows which
    control to change and a script author still sees the field."""
    from purge_engine import PurgeConfig

    # Names with an underscore cannot be ordinary words; a one-word name ("epochs") only where it leads.
    names = [f for f in PurgeConfig.__dataclass_fields__ if "_" in f or message.startswith(f"{f}:")]
    for name in sorted(names, key=len, reverse=True):
        message = re.sub(rf"(?<![\w\[]){name}(?![\w\]])", f"{field_label(name)} [{name}]", message)
    return message
