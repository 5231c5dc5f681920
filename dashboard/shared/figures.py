"""Plotly figures several pages share: pure functions, no st.* calls.

The colour of each role, and the layered mapping picture (Mapping, Forget, Learn): it takes
`plan.describe()` and a `RetrainScope.to_dict()` and returns a `go.Figure` built the same way every time
from the same input, so a chart keeps its shape across reruns. Ids are 0-based in the engine and
1-based on screen (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from purge_engine import teacher_names

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


def student_steps(describe: dict, k: int) -> int:
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
                          f"{len(s['chunks'])} chunks, {student_steps(describe, k)} steps", 2.0, float(np.mean(ys))))
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


# -- role colours (every page's figures) ------------------------------------------------------------------
# Okabe-Ito colours (safe for the common colour-blindnesses), keyed by role id, never by a title:
# renaming a title keeps its colour. Every role also has its own marker, so colour is never the only cue.
ROLE_COLOURS = {"teacher": "#555555", "purge": "#009E73", "single_teacher": "#E69F00", "baseline": "#0072B2",
                "full_retrain": "#D55E00"}
