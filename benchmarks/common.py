"""Shared helpers of the benchmark scripts: the hardware/versions header, timing, ratios, CSV output.

Every benchmark prints the machine it ran on first (STYLE rule 14): numbers without hardware
and versions are not results.
"""

from __future__ import annotations

import csv
import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets"


# -- the machine ---------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu", threads: int | None = None) -> dict:
    """What the numbers depend on: CPU, cores, threads, accelerator, library versions."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "cuda_available": torch.cuda.is_available(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average": round(os.getloadavg()[0], 2),  # other work on the machine while this one ran
    }


def git_commit() -> str:
    """The repository's short commit, "+dirty" when tracked files differ from it; "" outside a checkout.
    Read-only: GIT_OPTIONAL_LOCKS=0 keeps git from refreshing the index while it looks."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, timeout=30)

    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode:
            return ""
        dirty = git("diff", "--quiet", "HEAD", "--").returncode == 1
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty else "")


def header_line(info: dict) -> str:
    return (f"# {info['cpu']}, {info['cores']} cores, {info['threads']} threads ({info['cpu_capability']}), "
            f"device {info['device']}; torch {info['torch']}, numpy {info['numpy']}, Python {info['python']}, "
            f"{info['platform']}; load average {info['load_average']}")


def say(text: str, quiet: bool) -> None:
    """Progress and tables go to stderr under --json, so stdout holds exactly one JSON object."""
    print(text, file=sys.stderr if quiet else sys.stdout, flush=True)


# -- timing ---------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(wall seconds, result) of one call (perf_counter)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def seconds_of(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    return timed(fn)[0]


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each fn, `repeats` times, alternating between them so that a slow drift of
    the machine (another process, frequency changes) hits every contender alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds_of(fn))
    return times


# -- requests ------------------------------------------------------------------------------------
def teacher_side_sample(plan, seed: int) -> int:
    """A sample in a teacher shard and in no student chunk (the paper's teacher-side case), drawn with
    `seed` from those of `plan` (a purge_engine.plan.Plan)."""
    where = plan.locations()
    candidates = np.flatnonzero((where["teacher"] >= 0) & (where["student"] < 0))
    if candidates.size == 0:
        raise SystemExit("the layout has no teacher-side sample to forget")
    return int(np.random.default_rng(seed).choice(candidates))


# -- ratios ------------------------------------------------------------------------------------
def ratio_of_sums(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """sum(a) / sum(b): the ratio of expected costs, which is what the closed forms predict
    (a mean of per-request ratios would overweight cheap requests)."""
    return float(np.sum(numerators) / np.sum(denominators))


def bootstrap_spread(numerators: Sequence[float], denominators: Sequence[float], seed: int,
                     resamples: int = 2000) -> float:
    """Standard deviation of ratio_of_sums over bootstrap resamples of the requests (seeded)."""
    a, b = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    if a.size < 2:
        return 0.0
    picks = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    return float(np.std(a[picks].sum(1) / b[picks].sum(1)))


def quiet_collector() -> None:
    """Collect, then freeze every live object out of the cyclic garbage collector's sight.

    With torch loaded a full collection walks ~270,000 objects and takes ~130 ms on this machine,
    longer than a small training step; where such pauses land depends on this process's history,
    not on the method measured (in bench_forget they fell mostly in the baseline's time: it allocates
    the most). Freezing keeps collections on but cheap (gc.freeze, the usual fix for long-lived
    servers). A process-wide setting, so the benchmark's and not the engine's (the dashboard runs
    sweeps too).
    """
    gc.collect()
    gc.freeze()


# -- output ----------------------------------------------------------------------------------------
def machine_columns(info: dict) -> dict:
    """What every CSV row names of where it was measured (`info`: hardware(); rows of earlier runs may
    lack these)."""
    return {"cpu_model": info["cpu"], "cores": info["cores"], "threads": info["threads"], "torch": info["torch"],
            "commit": git_commit()}


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV; the columns are every key seen, in first-seen order (rows of older runs may lack some)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(paths: Sequence[Path], text_columns: Sequence[str] = ()) -> list[dict]:
    """The rows of write_csv's files, one list, with numbers and booleans parsed back; `text_columns`
    stay text (a commit of digits), and so does an empty cell."""
    def parse(key: str, value: str):
        if key in text_columns or value == "":
            return value
        if value in ("True", "False"):
            return value == "True"
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += [{k: parse(k, v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return rows


def markdown_table(rows: list[dict], columns: dict[str, str]) -> str:
    """A Markdown table of `rows` with the given {key: heading} columns; floats to 3 significant digits."""
    def cell(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key, "n/a")) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


# -- a small log-log chart drawn with Pillow (matplotlib is not a dependency; Plotly's PNG export needs a browser)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
INK, GRID = "#222222", "#dddddd"


def chart_font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font: no system fonts needed


class LogPanel:
    """One log2-log2 plotting area inside an image: maps (x, y) data values to pixels.

    box: (left, top, right, bottom) in pixels; x_range, y_range: (low, high) data values, both > 0.
    """

    def __init__(self, draw, box: tuple[int, int, int, int], x_range: tuple[float, float],
                 y_range: tuple[float, float]):
        self.draw, self.box = draw, box
        self.x_log = (np.log2(x_range[0]), np.log2(x_range[1]))
        self.y_log = (np.log2(y_range[0]), np.log2(y_range[1]))

    def px(self, x: float, y: float) -> tuple[float, float]:
        left, top, right, bottom = self.box
        fx = (np.log2(x) - self.x_log[0]) / (self.x_log[1] - self.x_log[0])
        fy = (np.log2(y) - self.y_log[0]) / (self.y_log[1] - self.y_log[0])
        return left + fx * (right - left), bottom - fy * (bottom - top)

    def frame(self, x_ticks: Sequence[float], y_ticks: Sequence[float], title: str, x_label: str,
              y_label: str | None) -> None:
        """Grid lines at the ticks, tick labels, the border, a title above and axis labels."""
        left, top, right, bottom = self.box
        small, large = chart_font(13), chart_font(15)
        for x in x_ticks:
            px, _ = self.px(x, 1.0)
            self.draw.line([(px, top), (px, bottom)], fill=GRID)
            self.draw.text((px, bottom + 6), f"{x:g}", fill=INK, font=small, anchor="mt")
        for y in y_ticks:
            _, py = self.px(1.0, y)
            self.draw.line([(left, py), (right, py)], fill=GRID)
            self.draw.text((left - 6, py), f"{y:g}", fill=INK, font=small, anchor="rm")
        self.draw.rectangle(self.box, outline=INK)
        self.draw.text(((left + right) / 2, top - 10), title, fill=INK, font=large, anchor="mb")
        self.draw.text(((left + right) / 2, bottom + 26), x_label, fill=INK, font=small, anchor="mt")
        if y_label:
            self.draw.text((left - 44, top - 10), y_label, fill=INK, font=small, anchor="lb")

    def line(self, points: Sequence[tuple[float, float]], color: str, dashed: bool = False) -> None:
        pixels = [self.px(x, y) for x, y in points]
        if not dashed:
            self.draw.line(pixels, fill=color, width=2)
            return
        for (x0, y0), (x1, y1) in zip(pixels, pixels[1:], strict=False):
            for t in np.arange(0.0, 1.0, 0.2):  # five dashes per segment
                a, b = t, t + 0.1
                self.draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)), (x0 + b * (x1 - x0), y0 + b * (y1 - y0))],
                               fill=color, width=2)

    def point(self, x: float, y: float, spread: float, color: str, filled: bool, dx: float = 0.0) -> None:
        """A marker at (x, y) shifted dx pixels, with an error bar y +- spread (clipped to the panel)."""
        px, py = self.px(x, y)
        px += dx
        low = max(y - spread, 2.0 ** self.y_log[0])
        _, top = self.px(x, y + spread)
        _, bottom = self.px(x, low)
        if spread > 0:
            self.draw.line([(px, top), (px, bottom)], fill=color, width=2)
            self.draw.line([(px - 4, top), (px + 4, top)], fill=color, width=2)
            self.draw.line([(px - 4, bottom), (px + 4, bottom)], fill=color, width=2)
        marker = [(px - 5, py - 5), (px + 5, py + 5)]
        if filled:
            self.draw.ellipse(marker, fill=color, outline=INK)
        else:
            self.draw.rectangle(marker, fill="white", outline=color, width=2)


def legend_row(draw, centre: float, y: float, items: Sequence[tuple[str, str, str]]) -> None:
    """One centred legend row at height y: items are (kind, colour, label), kind "line", "dot" (a filled
    marker), "square" (an open marker) or "text" (the label alone), drawn with the chart's own marks."""
    font, gap = chart_font(15), 24
    widths = [(0 if kind == "text" else 34) + draw.textlength(label, font=font) for kind, _, label in items]
    x = centre - (sum(widths) + gap * (len(items) - 1)) / 2
    for (kind, colour, label), width in zip(items, widths, strict=True):
        if kind == "line":
            draw.line([(x, y), (x + 26, y)], fill=colour, width=3)
        elif kind == "dot":
            draw.ellipse([(x + 8, y - 5), (x + 18, y + 5)], fill=colour, outline=INK)
        elif kind == "square":
            draw.rectangle([(x + 8, y - 5), (x + 18, y + 5)], fill="white", outline=colour, width=2)
        draw.text((x + (0 if kind == "text" else 34), y), label, fill=INK, font=font, anchor="lm")
        x += width + gap


def powers_of_two(low: float, high: float) -> list[float]:
    """Tick values 2^k covering [low, high]."""
    return [2.0**k for k in range(int(np.floor(np.log2(low))), int(np.ceil(np.log2(high))) + 1)]
