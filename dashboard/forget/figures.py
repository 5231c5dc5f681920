"""The Forget page's membership-check figure: pure, no st.* calls.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.forget.views import membership_roles
from dashboard.shared.figures import ROLE_COLOURS
from purge_engine import title

# -- the Forget page: the membership check ---------------------------------------------------------
LOSS_FLOOR = 1e-6  # nats: smaller losses (a sample predicted with near certainty) are drawn at the floor
MEMBERSHIP_CAPTION = ("Where each forgotten sample's loss falls among the losses of test samples, which the models "
                      "never saw: near 0 % it looks like a training sample, spread like the curve it looks unseen. "
                      "An illustrative loss-threshold attack, not a proof of forgetting.")


def membership_figure(record: dict) -> go.Figure | None:
    """One panel per role: the distribution of test-sample losses (its ECDF, drawn from the recorded
    quantiles; x: loss in nats, log scale; y: % of test samples with a lower loss) before (dashed) and
    after (solid) the request, and each forgotten sample's loss and percentile on it, before (open)
    and after (filled). None when the record holds no loss distribution (written before it was kept)."""
    roles = [r for r in membership_roles(record) if record["membership_before"][r].get("test_loss_quantiles")]
    if not roles:
        return None
    fig = make_subplots(rows=1, cols=len(roles), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[title(r) for r in roles])
    for col, role in enumerate(roles, start=1):
        for when in ("before", "after"):
            check = record.get(f"membership_{when}", {}).get(role)
            if check:
                for trace in _membership_traces(check, when, role, col == 1):
                    fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(type="log", title_text="loss (nats)", row=1, col=col)
    fig.update_yaxes(title_text="test samples with a lower loss (%)", range=[0, 100], row=1, col=1)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.25, "yanchor": "top"})
    return fig


def _membership_traces(check: dict, when: str, role: str, legend: bool) -> list[go.Scatter]:
    """The test-loss curve and the forgotten samples' markers of one role at one time."""
    colour = "#adb5bd" if when == "before" else ROLE_COLOURS.get(role, "#495057")
    quantiles = np.maximum(np.asarray(check.get("test_loss_quantiles", []), dtype=float), LOSS_FLOOR)
    curve = go.Scatter(x=quantiles, y=np.linspace(0, 100, quantiles.size), mode="lines", showlegend=legend,
                       name=f"test losses {when}", legendgroup=f"curve-{when}",
                       line={"color": colour, "dash": "dash" if when == "before" else "solid"},
                       hovertemplate="loss %{x:.3g}: %{y:.0f} % of test samples lower<extra>" + when + "</extra>")
    losses = np.maximum(np.asarray(check.get("forgotten_losses", []), dtype=float), LOSS_FLOOR)
    markers = go.Scatter(x=losses, y=check.get("forgotten_percentiles", []), mode="markers", showlegend=legend,
                         name=f"forgotten samples {when}", legendgroup=f"forgotten-{when}",
                         marker={"color": colour, "size": 9, "symbol": "circle-open" if when == "before" else "circle",
                                 "line": {"width": 2}},
                         hovertemplate="forgotten sample: loss %{x:.3g}, percentile %{y:.0f}<extra>" + when
                         + "</extra>")
    return [curve, markers]
