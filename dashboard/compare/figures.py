"""The Compare page's figures: cumulative cost and accuracy over the request history. Pure, no st.* calls;
each takes a frame from compare/views.py and returns a `go.Figure`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.shared import cost
from dashboard.shared.figures import ROLE_COLOURS
from purge_engine import title

ROLE_MARKERS = {"teacher": "x", "purge": "circle", "single_teacher": "triangle-up", "baseline": "square",
                "full_retrain": "diamond"}


def cumulative_cost_figure(frame: pd.DataFrame, unit: str) -> go.Figure:
    """Cumulative cost over the request history, one line per row of the cost tables (cost.py): teacher
    retraining, each method's students, the full retrain.

    frame: compare_views.cumulative_cost_frame (long: request, method (role id), unit, cumulative, estimated).
    unit: "sample_steps" or "seconds". A request whose value is estimated (full-retrain seconds that
    were not measured) gets an open marker; a line resting on any estimate is dashed."""
    part = frame[frame["unit"] == unit]
    fig = go.Figure()
    methods = list(dict.fromkeys(part["method"]))
    for order, method in enumerate(methods):
        rows = part[part["method"] == method]
        estimated = rows["estimated"].to_numpy(dtype=bool)
        name = cost.row_title(method)  # "PURGE students": a method's line counts its students only
        # Lines drawn earlier are wider and their markers larger: where two methods cost the same, the
        # later one sits inside the earlier one's halo instead of hiding it.
        width, size = 2 + 2.5 * (len(methods) - 1 - order), 7 + 4 * (len(methods) - 1 - order)
        symbol = ROLE_MARKERS.get(method, "circle")
        fig.add_trace(go.Scatter(
            x=rows["request"], y=rows["cumulative"], mode="lines+markers", name=name,
            line={"color": ROLE_COLOURS.get(method), "dash": "dash" if estimated.any() else "solid", "width": width},
            marker={"symbol": [f"{symbol}-open" if e else symbol for e in estimated], "size": size},
            customdata=np.where(rows["cumulative_estimated"].to_numpy(dtype=bool), " (includes estimates)", ""),
            hovertemplate="request %{x}: %{y:,.4~g}%{customdata}<extra>" + name + "</extra>"))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="x unified",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      xaxis={"title": "forget requests served", "dtick": 1, "rangemode": "tozero"},
                      yaxis={"title": "cumulative sample-steps" if unit == "sample_steps"
                             else "cumulative seconds", "rangemode": "tozero"})
    return fig


def accuracy_figure(frame: pd.DataFrame) -> go.Figure:
    """Test accuracy of each role over the request history (compare_views.accuracy_frame, roles by id),
    in percent; measured full retrains of the PURGE students as separate markers."""
    fig = go.Figure()
    for role in dict.fromkeys(frame["role"]):
        rows = frame[frame["role"] == role]
        full = role == "full_retrain"
        name = f"{title(role)} (PURGE students)" if full else title(role)
        fig.add_trace(go.Scatter(x=rows["request"], y=rows["test_accuracy"] * 100, name=name,
                                 mode="markers" if full else "lines+markers",
                                 line={"color": ROLE_COLOURS.get(role)},
                                 marker={"symbol": "diamond-open", "size": 13, "line": {"width": 2},
                                         "color": ROLE_COLOURS["full_retrain"]} if full
                                 else {"size": 7, "color": ROLE_COLOURS.get(role)},
                                 hovertemplate="request %{x}: %{y:.1f} %<extra>" + name + "</extra>"))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      xaxis={"title": "after request (0 = before the first)", "dtick": 1},
                      yaxis={"title": "test accuracy (%)"})
    return fig
