"""The Mapping page's figures and sentences: what one teacher influences, the Sankey overview, the class
mix per shard. Pure: no st.* calls; each takes `plan.describe()` (or a Plan) and returns a `go.Figure`, a
frame or a sentence. The layered mapping graph itself is shared (shared/figures.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.shared.figures import (
    LAYER_COLOURS,
    LAYERS,
    MAX_TEXT_ROWS,
    NodeKey,
    mapping_edges,
    mapping_nodes,
    student_steps,
)
from purge_engine import teacher_names


def clicked_node(selection: dict | None) -> tuple | None:
    """The node a chart selection (st.plotly_chart's event or its session-state value) points at:
    ("teacher", t), ("shard", t), ("student", k), ("chunk", k, l), ("slice", k, l, j), or None."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and data and data[0] in LAYERS:
            return (data[0], *(int(v) for v in data[1:] if int(v) >= 0))
    return None


def shared_with_students(plan, teacher_id: int) -> dict[int, int]:
    """Student id -> how many of the teacher's samples also sit in that student's data (overlap layouts)."""
    where = plan.locations()["student"][plan.teacher_shard(teacher_id)]
    students, counts = np.unique(where[where >= 0], return_counts=True)
    return {int(k): int(n) for k, n in zip(students, counts, strict=True)}


def teacher_influence_text(describe: dict, affected: dict, teacher_id: int,
                           shared: dict[int, int] | None = None) -> str:
    """What forgetting one sample of a teacher retrains, per method, from scope_for_changes({t: 0}).
    shared: shared_with_students(); its samples that also sit in a student's data retrain that student
    from their slice as well, so the sentences say which samples they hold for."""
    r = describe["student_slices"]
    purge = {int(k): int(s) for k, s in affected["students"].get("purge", {}).items()}
    only = " that sits only in its shard" if shared else ""
    parts = [f"Forgetting a sample of **Teacher {teacher_id + 1}**{only} retrains Teacher {teacher_id + 1} "
             "(from the slice that held it)"]
    if purge:
        parts.append(" and, for PURGE, " + "; ".join(
            f"**Student {k + 1} from chunk {s // r + 1}** ({_steps_of(s, student_steps(describe, k))})"
            for k, s in purge.items())
            + ": the soft labels of those chunks are recomputed, because this teacher's softmax is in their mean")
    kept = [k for k in range(describe["n_students"]) if k not in purge]
    text = "".join(parts) + "."
    if kept:
        text += f" {_student_names(kept)} keep{'s' if len(kept) == 1 else ''} every checkpoint."
    single = {int(k): int(s) for k, s in affected["students"].get("single_teacher", {}).items()}
    if single and single != purge:
        text += " Single-teacher PURGE retrains " + "; ".join(
            f"Student {k + 1} from step {s + 1}" for k, s in single.items()) + "."
    elif single:
        text += " Single-teacher PURGE retrains the same students from the same steps."
    baseline = affected["students"].get("baseline", {})
    if baseline:
        text += (f" The baseline student (SISA) retrains {_count_students(len(baseline), describe['n_students'])} "
                 "from scratch: every baseline label comes from the whole teacher ensemble.")
    if shared:
        held = ", ".join(f"Student {k + 1}: {n:,}" for k, n in shared.items())
        text += (f" {sum(shared.values()):,} of this teacher's samples also sit in a student's data ({held}): "
                 "forgetting one of those also retrains that student from the sample's slice, under every method "
                 "(the Forget page prices each sample exactly).")
    return text


def _steps_of(first: int, total: int) -> str:
    """0-based first step of `total` -> "steps 5–8 of 8", "step 8 of 8"."""
    return f"step {total} of {total}" if first + 1 == total else f"steps {first + 1}–{total} of {total}"


def _student_names(ids) -> str:
    return teacher_names(ids).replace("Teacher", "Student")


def _count_students(n: int, total: int) -> str:
    if n == total:
        return "its only student" if total == 1 else f"all {total} students"
    return f"{n} of its {total} students"


# -- the Sankey overview ------------------------------------------------------------------------
def mapping_sankey(describe: dict, shards: bool = True) -> go.Figure:
    """Read-only overview of the same layers as mapping_graph; band widths are samples.

    Links: shard -> teacher (the teacher's shard size), teacher -> student (the samples of the chunk
    where that teacher's labels start), student -> chunk (chunk size), chunk -> slice (slice size).
    """
    nodes = mapping_nodes(describe, shards)
    index = {n.key: i for i, n in enumerate(nodes)}
    sources, targets, values, hovers = [], [], [], []
    for a, b in mapping_edges(describe, shards):
        sources.append(index[a])
        targets.append(index[b])
        value, hover = _sankey_link(describe, a, b)
        values.append(value)
        hovers.append(hover)
    many = sum(1 for n in nodes if n.key[0] == "slice") > MAX_TEXT_ROWS
    labels = ["" if many and n.key[0] == "slice" else n.text.split(" · ")[0] for n in nodes]
    fig = go.Figure(go.Sankey(
        arrangement="fixed",
        node={"label": labels, "color": [LAYER_COLOURS[n.key[0]] for n in nodes], "pad": 6, "thickness": 14,
              "customdata": [n.hover for n in nodes], "hovertemplate": "%{customdata}<extra></extra>",
              "line": {"width": 0}},
        link={"source": sources, "target": targets, "value": values, "customdata": hovers,
              "hovertemplate": "%{customdata}<extra></extra>", "color": "rgba(134, 142, 150, 0.25)"}))
    fig.update_layout(height=int(min(900, max(320, len(describe["teachers"]) * 40 + 120))),
                      margin={"l": 10, "r": 10, "t": 10, "b": 10}, font={"size": 12})
    return fig


def _sankey_link(describe: dict, a: NodeKey, b: NodeKey) -> tuple[int, str]:
    if a[0] == "shard":
        size = sum(describe["teachers"][a[1]]["slice_sizes"])
        return size, f"Shard {a[1] + 1} → Teacher {a[1] + 1}: {size:,} samples"
    if a[0] == "teacher":
        k = b[1]
        position = describe["students"][k]["teacher_ids"].index(a[1])
        size = sum(describe["students"][k]["chunks"][position]["slice_sizes"])
        return size, (f"Teacher {a[1] + 1} → Student {k + 1}: its labels start at chunk {position + 1} "
                      f"({size:,} samples) and stay in every later chunk")
    if a[0] == "student":
        size = sum(describe["students"][b[1]]["chunks"][b[2]]["slice_sizes"])
        return size, f"Student {b[1] + 1} → chunk {b[2] + 1}: {size:,} samples"
    size = describe["students"][b[1]]["chunks"][b[2]]["slice_sizes"][b[3]]
    return size, f"Student {b[1] + 1}, chunk {b[2] + 1} → slice {b[3] + 1}: {size:,} samples"


def class_mix_frame(plan, train_y, class_names) -> pd.DataFrame:
    """Class counts per teacher shard and per student chunk: columns group ("Teacher shards" or
    "Student chunks"), unit ("Teacher 3", "S1 chunk 2"), class (name), count. Forgotten samples are
    gone from the plan, so the counts of a unit sum to its current size."""
    labels = train_y.cpu().numpy() if hasattr(train_y, "cpu") else np.asarray(train_y)  # a tensor, maybe on GPU
    n_classes = len(class_names)
    units = [("Teacher shards", f"Teacher {i + 1}", plan.teacher_shard(i)) for i in range(plan.n_teachers)]
    units += [("Student chunks", f"S{k + 1} chunk {l_ + 1}", np.concatenate(plan.student_shards[k][l_]))
              for k in range(plan.n_students) for l_ in range(plan.n_chunks(k))]
    rows = []
    for group, unit, ids in units:
        counts = np.bincount(labels[ids], minlength=n_classes) if ids.size else np.zeros(n_classes, dtype=int)
        rows += [{"group": group, "unit": unit, "class": str(class_names[c]), "count": int(counts[c])}
                 for c in range(n_classes)]
    return pd.DataFrame(rows, columns=["group", "unit", "class", "count"])


def _class_colours(n: int) -> list[str]:
    if n <= 10:
        return list(plotly.colors.qualitative.Plotly[:n])
    return plotly.colors.sample_colorscale("Turbo", [i / max(1, n - 1) for i in range(n)])


def class_mix_figure(frame: pd.DataFrame) -> go.Figure:
    """Stacked bars of class_mix_frame: one panel for teacher shards, one for student chunks."""
    groups = list(dict.fromkeys(frame["group"]))
    widths = [frame.loc[frame["group"] == g, "unit"].nunique() for g in groups]
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=groups, column_widths=widths,
                        horizontal_spacing=0.06, shared_yaxes=False)
    classes = list(dict.fromkeys(frame["class"]))
    colours = _class_colours(len(classes))
    for col, group in enumerate(groups, start=1):
        part = frame[frame["group"] == group]
        for colour, name in zip(colours, classes, strict=True):
            rows = part[part["class"] == name]
            fig.add_trace(go.Bar(x=rows["unit"], y=rows["count"], name=name, legendgroup=name,
                                 marker_color=colour, showlegend=col == 1 and len(classes) <= 20,
                                 hovertemplate=f"%{{x}}: %{{y}} samples of class {name}<extra></extra>"),
                          row=1, col=col)
    fig.update_layout(barmode="stack", height=420, margin={"l": 10, "r": 10, "t": 60, "b": 10}, bargap=0.15,
                      legend={"title": {"text": "class "}, "orientation": "h", "y": 1.08, "yanchor": "bottom"})
    for col, group in enumerate(groups, start=1):  # every panel says what its axes are
        fig.update_yaxes(title_text="samples", row=1, col=col)
        fig.update_xaxes(title_text="teacher shard" if group.startswith("Teacher") else "student chunk", row=1, col=col)
    return fig
