"""Plotly figure builders for the dashboard: pure functions, no st.* calls.

Each takes engine output (`plan.describe()`, a `RetrainScope.to_dict()`, ledger-derived frames from
compare_views) and returns a `go.Figure` (or a small frame or sentence beside one), built the same
way every time from the same input: node positions are fixed, so a chart keeps its shape across reruns.
Ids are 0-based in the engine and 1-based on screen (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.views import membership_roles
from purge_engine.plan import METHODS
from purge_engine.vocabulary import teacher_names, title

# -- the mapping: shards -> teachers -> students -> chunks -> slices --------------------------------
LAYERS = ("shard", "teacher", "student", "chunk", "slice")
LAYER_TITLES = {"shard": "Teacher shards", "teacher": "Teachers", "student": "Students",
                "chunk": "Chunks (labelled by)", "slice": "Slices"}
LAYER_COLOURS = {"shard": "#868e96", "teacher": "#1c7ed6", "student": "#2f9e44", "chunk": "#f08c00",
                 "slice": "#e8590c"}
DIM_NODE, DIM_EDGE, EDGE, HOT_EDGE = "#dee2e6", "#edf0f2", "#ced4da", "#495057"
ROW_PX = 26  # vertical pixels per row of the tallest layer (the slices), up to GRAPH_MAX_PX in all
GRAPH_MIN_PX, GRAPH_MAX_PX, GRAPH_MARGIN_PX = 360, 1400, 86  # margin: titles, and room for the end labels
MARKER_PX = {"shard": 12, "teacher": 16, "student": 18, "chunk": 12, "slice": 10}
MAX_TEXT_ROWS = 40  # a layer with more nodes than this shows names on hover only
NodeKey = tuple  # ("teacher", t), ("student", k), ("chunk", k, l), ("slice", k, l, j), ("shard", t)


@dataclass(frozen=True)
class Node:
    key: NodeKey
    text: str  # short name drawn beside the marker
    hover: str  # the full sentence on hover
    x: float
    y: float


def _students_steps(describe: dict, k: int) -> int:
    return len(describe["students"][k]["chunks"]) * describe["student_slices"]


def _slice_rows(describe: dict) -> dict[tuple[int, int, int], float]:
    """(student, chunk, slice) -> y, top to bottom: the slices fix the vertical order of everything."""
    keys = [(s["student_id"], c["chunk_id"], j) for s in describe["students"] for c in s["chunks"]
            for j in range(len(c["slice_sizes"]))]
    return {key: -float(i) for i, key in enumerate(keys)}


def _spread(n: int, top: float, bottom: float) -> list[float]:
    """n evenly spaced positions from top to bottom (the middle when n is 1)."""
    return [(top + bottom) / 2] if n == 1 else list(np.linspace(top, bottom, n))


def mapping_nodes(describe: dict, shards: bool = True) -> list[Node]:
    """Every node of the layered mapping picture, with fixed positions (x = layer, y = row)."""
    rows = _slice_rows(describe)
    r = describe["student_slices"]
    top, bottom = 0.0, min(rows.values())
    nodes: list[Node] = []
    teacher_y = _spread(describe["n_teachers"], top, bottom)
    for t in describe["teachers"]:
        i, size = t["teacher_id"], sum(t["slice_sizes"])
        feeds = ", ".join(f"Student {k + 1}" for k in t["students"])
        if shards:
            nodes.append(Node(("shard", i), f"Shard {i + 1} · {size:,}",
                              f"Shard of Teacher {i + 1}: {size:,} samples in {len(t['slice_sizes'])} slices "
                              f"({', '.join(map(str, t['slice_sizes']))})", 0.0, teacher_y[i]))
        nodes.append(Node(("teacher", i), f"Teacher {i + 1}",
                          f"Teacher {i + 1}: trained on its shard ({size:,} samples); feeds {feeds}. "
                          "Click to see everything it influences.", 1.0, teacher_y[i]))
    for s in describe["students"]:
        k = s["student_id"]
        ys = [y for (kk, _, _), y in rows.items() if kk == k]
        size = sum(sum(c["slice_sizes"]) for c in s["chunks"])
        nodes.append(Node(("student", k), f"Student {k + 1}",
                          f"Student {k + 1}: distils {teacher_names(s['teacher_ids'])}; {size:,} samples in "
                          f"{len(s['chunks'])} chunks, {_students_steps(describe, k)} steps", 2.0, float(np.mean(ys))))
        for c in s["chunks"]:
            l_ = c["chunk_id"]
            ys = [rows[(k, l_, j)] for j in range(len(c["slice_sizes"]))]
            labellers = (f"labelled by {teacher_names(c['label_teachers'])} (mean of their softmax)"
                         if c["label_teachers"] else "labelled uniformly: every teacher of it has been emptied")
            nodes.append(Node(("chunk", k, l_), f"chunk {l_ + 1} ← {_short_teachers(c['label_teachers'])}",
                              f"Student {k + 1}, chunk {l_ + 1}: {labellers}; "
                              f"{sum(c['slice_sizes']):,} samples; steps {l_ * r + 1}–{l_ * r + r}",
                              3.0, float(np.mean(ys))))
            for j, n in enumerate(c["slice_sizes"]):
                nodes.append(Node(("slice", k, l_, j), f"slice {j + 1} · {n:,}",
                                  f"Student {k + 1}, chunk {l_ + 1}, slice {j + 1}: {n:,} samples; "
                                  f"first trained at step {l_ * r + j + 1}", 4.0, rows[(k, l_, j)]))
    return nodes


def _short_teachers(teacher_ids) -> str:
    """[0, 1, 2] -> "T1–T3"; [4] -> "T5"; [] -> "uniform" (no teacher left to label the chunk)."""
    ids = [int(t) + 1 for t in teacher_ids]
    if not ids:
        return "uniform"
    if len(ids) == 1:
        return f"T{ids[0]}"
    return f"T{ids[0]}–T{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else ",".join(f"T{i}" for i in ids)


def mapping_edges(describe: dict, shards: bool = True) -> list[tuple[NodeKey, NodeKey]]:
    """(from, to) node keys: shard -> teacher -> student -> chunk -> slice."""
    edges = [(("shard", t), ("teacher", t)) for t in range(describe["n_teachers"])] if shards else []
    for s in describe["students"]:
        k = s["student_id"]
        edges += [(("teacher", t), ("student", k)) for t in s["teacher_ids"]]
        for c in s["chunks"]:
            edges.append((("student", k), ("chunk", k, c["chunk_id"])))
            edges += [(("chunk", k, c["chunk_id"]), ("slice", k, c["chunk_id"], j))
                      for j in range(len(c["slice_sizes"]))]
    return edges


def highlighted_nodes(describe: dict, affected: dict | None) -> set[NodeKey]:
    """Nodes a RetrainScope.to_dict()-shaped dict touches: its teachers (and their shards), its PURGE
    students, and their chunks and slices from the first retrained step on."""
    if affected is None:
        return set()
    r = describe["student_slices"]
    keys: set[NodeKey] = set()
    for t in affected.get("teachers", {}):
        keys |= {("teacher", int(t)), ("shard", int(t))}
    for k, first in affected.get("students", {}).get("purge", {}).items():
        k, first = int(k), int(first)
        keys.add(("student", k))
        for c in describe["students"][k]["chunks"]:
            slices = {("slice", k, c["chunk_id"], j) for j in range(len(c["slice_sizes"]))
                      if c["chunk_id"] * r + j >= first}
            keys |= slices | ({("chunk", k, c["chunk_id"])} if slices else set())
    return keys


def mapping_graph(describe: dict, affected: dict | None = None, shards: bool = True) -> go.Figure:
    """The mapping as a layered node-link figure (clickable, unlike a Sankey).

    affected: a RetrainScope.to_dict()-shaped dict; its teachers, PURGE students and their chunks and
    slices from the first retrained step on are drawn in colour, everything else dimmed. None: all in
    colour. Each node's customdata is [layer, id, id, id] (-1 padded): a click maps back to
    ("teacher", t, -1, -1), ("student", k, -1, -1), ("chunk", k, l, -1) or ("slice", k, l, j).
    """
    nodes = mapping_nodes(describe, shards)
    hot = highlighted_nodes(describe, affected)
    dim = affected is not None
    where = {n.key: (n.x, n.y) for n in nodes}
    rows = 1 - min(n.y for n in nodes)  # the tallest layer (slices) has one node per row
    height = int(min(GRAPH_MAX_PX, max(GRAPH_MIN_PX, rows * ROW_PX + GRAPH_MARGIN_PX)))
    row_px = (height - GRAPH_MARGIN_PX) / rows  # pixels per row, less the room kept above and below
    fig = go.Figure()
    for is_hot in (False, True):
        pairs = [(a, b) for a, b in mapping_edges(describe, shards) if ((a in hot and b in hot) == is_hot)]
        if pairs:
            colour = HOT_EDGE if is_hot and dim else (DIM_EDGE if dim else EDGE)
            fig.add_trace(_edge_trace(pairs, where, colour, 2.0 if is_hot and dim else 1.0))
    for layer in LAYERS:
        layer_nodes = [n for n in nodes if n.key[0] == layer]
        if layer_nodes:
            size = min(MARKER_PX[layer], max(4.0, 0.8 * row_px * rows / len(layer_nodes)))
            fig.add_trace(_node_trace(layer, layer_nodes, hot, dim, size))
    return _graph_layout(fig, rows, row_px, height, shards)


def _edge_trace(pairs, where, colour: str, width: float) -> go.Scatter:
    xs, ys = [], []
    for a, b in pairs:
        xs += [where[a][0], where[b][0], None]
        ys += [where[a][1], where[b][1], None]
    return go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "width": width}, hoverinfo="skip",
                      showlegend=False)


def _node_trace(layer: str, nodes: list[Node], hot: set[NodeKey], dim: bool, size: float) -> go.Scatter:
    """One layer's nodes; size: marker diameter in pixels, kept below the spacing between nodes."""
    lit = [not dim or n.key in hot for n in nodes]
    return go.Scatter(
        x=[n.x for n in nodes], y=[n.y for n in nodes], name=LAYER_TITLES[layer],
        mode="markers+text" if len(nodes) <= MAX_TEXT_ROWS else "markers", text=[n.text for n in nodes],
        textposition={"shard": "middle left", "slice": "middle right"}.get(layer, "top center"),
        textfont={"color": ["#212529" if on else "#adb5bd" for on in lit], "size": 12},
        hovertext=[n.hover for n in nodes], hoverinfo="text",
        customdata=[[layer, *(list(n.key[1:]) + [-1, -1, -1])[:3]] for n in nodes],
        marker={"color": [LAYER_COLOURS[layer] if on else DIM_NODE for on in lit], "size": size,
                "line": {"color": "white", "width": 1 if size > 6 else 0}},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}}, showlegend=False)


def _graph_layout(fig: go.Figure, rows: float, row_px: float, height: int, shards: bool) -> go.Figure:
    first = 0 if shards else 1
    for x, layer in enumerate(LAYERS):
        if x >= first:  # layer titles sit in the top margin, above every node label
            fig.add_annotation(x=x, y=1, xref="x", yref="paper", yshift=8, text=f"<b>{LAYER_TITLES[layer]}</b>",
                               showarrow=False, yanchor="bottom", font={"color": LAYER_COLOURS[layer], "size": 13})
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        plot_bgcolor="white", dragmode=False, hovermode="closest", clickmode="event+select",
        xaxis={"visible": False, "range": [first - 0.75, 4.85], "fixedrange": True},
        yaxis={"visible": False, "range": [1 - rows - 12 / row_px, 24 / row_px], "fixedrange": True})
    return fig


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
            f"**Student {k + 1} from chunk {s // r + 1}** ({_steps_of(s, _students_steps(describe, k))})"
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


# -- label composition and class mix -------------------------------------------------------------
def label_composition_table(plan) -> pd.DataFrame:
    """One row per (student, chunk): whose softmax is averaged into its soft labels, per method.

    Reads plan.labelling_teachers, so a teacher emptied by forgetting drops out of the mean."""
    rows = []
    r = plan.student_slices
    for k in range(plan.n_students):
        for l_ in range(plan.n_chunks(k)):
            row = {"Student": f"Student {k + 1}", "Chunk": f"chunk {l_ + 1}",
                   "Samples": int(sum(s.size for s in plan.student_shards[k][l_])),
                   "Steps": f"{l_ * r + 1}–{l_ * r + r}" if r > 1 else str(l_ + 1)}
            for method in METHODS:
                teachers = plan.labelling_teachers(method, k, l_)
                row[title(method)] = _mean_of(teachers)
            rows.append(row)
    return pd.DataFrame(rows, columns=["Student", "Chunk", "Samples", "Steps", *(title(m) for m in METHODS)])


def _mean_of(teachers) -> str:
    if not teachers:
        return "uniform (no teacher left)"
    if len(teachers) == 1:
        return teacher_names(teachers)
    return f"{teacher_names(teachers)} (1/{len(teachers)} each)"


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


# -- the Compare page --------------------------------------------------------------------------
# Okabe-Ito colours (safe for the common colour-blindnesses), keyed by role id, never by a title:
# renaming a title keeps its colour. Every role also has its own marker, so colour is never the only cue.
ROLE_COLOURS = {"teacher": "#555555", "purge": "#009E73", "single_teacher": "#E69F00", "baseline": "#0072B2",
                "full_retrain": "#D55E00"}
ROLE_MARKERS = {"teacher": "x", "purge": "circle", "single_teacher": "triangle-up", "baseline": "square",
                "full_retrain": "diamond"}


def cumulative_cost_figure(frame: pd.DataFrame, unit: str) -> go.Figure:
    """Cumulative cost over the request history, one line per method.

    frame: compare_views.cumulative_cost_frame (long: request, method (role id), unit, cumulative, estimated).
    unit: "sample_steps" or "seconds". A request whose value is estimated (full-retrain seconds that
    were not measured) gets an open marker; a line resting on any estimate is dashed."""
    part = frame[frame["unit"] == unit]
    fig = go.Figure()
    methods = list(dict.fromkeys(part["method"]))
    for order, method in enumerate(methods):
        rows = part[part["method"] == method]
        estimated = rows["estimated"].to_numpy(dtype=bool)
        name = title(method, "short")
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
