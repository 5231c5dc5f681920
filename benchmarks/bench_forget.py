"""Measured unlearning speed-ups of PURGE against the closed forms (DESIGN section 7).

A thin script over purge_engine.sweep: each layout (dataset, N_t, N_s, r) is a one-layout SweepGrid
that run_sweep trains (teachers, PURGE students, baseline students) and on which it serves K
teacher-side and K student-side forget requests of one sample each, one at a time; the Trade-offs
page's measured points are the same records. The sweep compares what they cost:

  teacher-side: PURGE student vs the baseline student (SISA), whose every student retrains
                from scratch because every soft label changed; closed form
                theory.teacher_side_speedup(N_t, N_s, r).
  student-side: PURGE student vs retraining that student from scratch; closed form
                theory.student_side_speedup(R), R = c r. (The baseline student rolls back
                exactly like PURGE here, so PURGE over baseline is 1; printed as a check.)

Costs are those the sweep records per request: sample-steps (samples x epochs trained,
device-independent) from ForgetReport.cost, and seconds from the engine's step and label events
(sweep.Stopwatch): wall seconds of training plus soft-label recomputation (each method pays its own
labels), also split into labels and the rest, and repeated in this process's CPU seconds (one
thread: equal to wall seconds on an idle machine). Teacher retraining is the same for both methods
and is kept out of the ratios, as in theory.py; its mean cost is in the CSV. What is this script's
own: the closed-form ratios and verdicts, the spreads, the CSV (with the CPU, torch version and git
commit it ran on), the PNG, --merge/--markdown, and a frozen garbage collector per layout.

A speed-up is a ratio of sums over the K requests, sum(reference) / sum(PURGE): the ratio of
expected costs, which is what the closed forms are. Spread: bootstrap standard deviation of that
ratio over the requests. Requests are sweep.request_samples: seeded, stratified over the position
that decides the cost (the affected teacher's place in its student's group; the sample's step in
its student), so K requests realise "uniform over teachers / samples" with little sampling noise.

Layout choices that make the closed forms' assumptions hold:
  student_data "disjoint": a teacher-side sample sits in no student shard and vice versa;
  epochs 2: the SISA rule then gives every student step the same number of epochs for every
            R (1 epoch, or 2 when R = 1), the "whole number of epochs per step" assumption;
  N_s divides N_t: c = N_t / N_s teachers per student, equal chunks;
  teacher_slices 1: only teacher cost depends on it, and it is not in the ratios.
Slices hold |D^S| / (N_t r) samples, rounded: sizes differ by at most one sample.

    .venv/bin/python benchmarks/bench_forget.py --quick          # under 3 minutes on 2 cores
    .venv/bin/python benchmarks/bench_forget.py                  # the full grid (hours)
    .venv/bin/python benchmarks/bench_forget.py --smoke --json   # the tests' smallest layouts
    .venv/bin/python benchmarks/bench_forget.py --merge a.csv b.csv --markdown  # join runs: CSV, PNG, tables
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from common import (
    ASSETS,
    PALETTE,
    LogPanel,
    bootstrap_spread,
    chart_font,
    hardware,
    header_line,
    legend_row,
    machine_columns,
    markdown_table,
    powers_of_two,
    quiet_collector,
    ratio_of_sums,
    read_csv,
    say,
    write_csv,
)
from layouts import FORGET_GRIDS, FORGET_STUDENT_FRACTION, ForgetGrid

from purge_engine import theory
from purge_engine.config import PurgeConfig
from purge_engine.datasets.sources import DATASETS
from purge_engine.plan import Plan
from purge_engine.sweep import SWEEP_BASE, LayoutPlan, SweepGrid, plan_sweep, run_sweep

METHODS = ("purge", "baseline")  # the single-teacher ablation is in no ratio here: not trained
TOLERANCE_STEPS, TOLERANCE_WALL = 0.10, 0.25  # the targets: |measured / closed form - 1|


# -- layouts: one SweepGrid each ---------------------------------------------------------------------
def base_config(dataset: str, settings: ForgetGrid) -> PurgeConfig:
    """The sweep's base (one teacher slice, disjoint student data) with this benchmark's choices."""
    return SWEEP_BASE.replace(dataset=dataset, teacher_fraction=settings.teacher_fraction,
                              student_fraction=FORGET_STUDENT_FRACTION.get(dataset, 0.25), epochs=settings.epochs,
                              batch_size=settings.batch_size, seed=settings.seed, threads=settings.threads)


def grids(settings: ForgetGrid) -> list[SweepGrid]:
    """One single-layout grid per (dataset, N_t, N_s dividing N_t, r), validated. One sweep per layout:
    the garbage collector is frozen before each, and its rows print as soon as it is done."""
    return [SweepGrid(base_config(d, settings), (n_t,), (n_s,), (r,), settings.requests, METHODS).validate()
            for d in settings.datasets for n_t in settings.teachers
            for n_s in (settings.students or theory.divisors(n_t)) if n_t % n_s == 0 for r in settings.slices]


def assumptions(plan: Plan) -> tuple[bool, str]:
    """Whether the closed forms' assumptions hold for this plan, and which one fails if not."""
    if any(len(plan.mapping[k]) != len(plan.mapping[0]) for k in range(plan.n_students)):
        return False, "N_s does not divide N_t (unequal chunks per student)"
    if any(len(set(epochs)) != 1 for epochs in plan.student_epochs):
        return False, "epochs per student step differ (SISA rule with a fractional 2e/(R+1))"
    return True, "c whole, equal epochs per step, disjoint student data"


def slice_sizes(plan: Plan) -> tuple[int, int]:
    sizes = [s.size for chunks in plan.student_shards for chunk in chunks for s in chunk]
    return int(min(sizes)), int(max(sizes))


# -- one layout: run_sweep, then this benchmark's ratios ------------------------------------------------
def run_layout(grid: SweepGrid, root: Path) -> tuple[list[dict], dict]:
    """Train and serve the grid's one layout with run_sweep; two CSV rows (teacher side, student
    side) and the sweep's record of the layout."""
    quiet_collector()  # pauses of the garbage collector would land mostly in the baseline's time
    [lp] = plan_sweep(grid)
    [record] = run_sweep(grid, root)["layouts"]
    holds, note = assumptions(lp.plan)
    low, high = slice_sizes(lp.plan)
    note = f"{note}; student slices of {low}-{high} samples"
    return [summarise(record, side, lp, holds, note) for side in ("teacher", "student")], record


def summarise(record: dict, side: str, lp: LayoutPlan, holds: bool, note: str) -> dict:
    """One CSV row: measured and predicted speed-ups over the side's requests of a sweep record.
    Sample-steps and wall speed-ups are the sweep's summary; the rest is read from its requests."""
    served = [r for r in record["requests"] if r["side"] == side]
    config, layout, closed = lp.config, lp.layout, record["theory"][f"{side}_side_speedup"]
    purge_steps = [r["measured"]["purge"]["sample_steps"] for r in served]
    reference_steps = [r["reference_sample_steps"] for r in served]
    predicted_reference = [r["predicted"]["baseline"] if side == "teacher" else r["reference_sample_steps"]
                           for r in served]
    purge = {k: [r["timing"]["purge"][k] for r in served] for k in ("wall", "label_wall", "cpu", "label_cpu")}
    reference = {k: [r["reference_timing"][k] for r in served] for k in purge}
    steps, wall = record["summary"][side]["speedup"], record["summary"][side]["speedup_wall"]
    cpu = ratio_of_sums(reference["cpu"], purge["cpu"])
    return {
        "dataset": config.dataset, "side": side, "n_teachers": layout.n_teachers, "n_students": layout.n_students,
        "student_slices": layout.student_slices, "steps_per_student": layout.n_teachers // layout.n_students
        * layout.student_slices, "epochs": config.epochs,
        "student_samples": config.pool_sizes(DATASETS[config.dataset].n_train)[1], "requests": len(served),
        "closed_form": closed,
        "plan_predicted": ratio_of_sums(predicted_reference, [r["predicted"]["purge"] for r in served]),
        "speedup_steps": steps, "spread_steps": bootstrap_spread(reference_steps, purge_steps, config.seed),
        "ratio_steps": steps / closed,
        "speedup_wall": wall, "spread_wall": bootstrap_spread(reference["wall"], purge["wall"], config.seed),
        "ratio_wall": wall / closed, "speedup_wall_training_only": _training_only(reference, purge, "wall"),
        "speedup_cpu": cpu, "spread_cpu": bootstrap_spread(reference["cpu"], purge["cpu"], config.seed),
        "ratio_cpu": cpu / closed, "speedup_cpu_training_only": _training_only(reference, purge, "cpu"),
        "label_share_reference": sum(reference["label_wall"]) / sum(reference["wall"]),
        "label_share_purge": sum(purge["label_wall"]) / sum(purge["wall"]),
        "label_share_reference_cpu": sum(reference["label_cpu"]) / sum(reference["cpu"]),
        "purge_over_baseline_steps": ratio_of_sums([r["measured"]["baseline"]["sample_steps"] for r in served],
                                                   purge_steps),
        "purge_seconds_mean": float(np.mean(purge["wall"])),
        "reference_seconds_mean": float(np.mean(reference["wall"])),
        "teacher_steps_mean": float(np.mean([r["measured"]["teacher"]["sample_steps"] for r in served])),
        "teacher_seconds_mean": float(np.mean([r["timing"]["teacher"]["wall"] for r in served])),
        "assumptions_hold": holds, "note": note,
        "purge_sample_steps": sum(purge_steps), "reference_sample_steps": sum(reference_steps),
        **{f"accuracy_{role}": record["accuracy"].get(role) for role in METHODS},
    }


def _training_only(reference: dict, purge: dict, clock: str) -> float:
    """The speed-up in `clock` ("wall" or "cpu") seconds with every label phase left out."""
    return ratio_of_sums(np.subtract(reference[clock], reference[f"label_{clock}"]),
                         np.subtract(purge[clock], purge[f"label_{clock}"]))


# -- printing ------------------------------------------------------------------------------------------
COLUMNS = ("dataset", "side", "N_t", "N_s", "r", "R", "closed", "steps", "+-", "/closed", "wall", "+-", "/closed",
           "w/o label", "labels%", "cpu", "/closed", "w/o label")


def table_line(row: dict) -> str:
    cells = (row["dataset"], row["side"], row["n_teachers"], row["n_students"], row["student_slices"],
             row["steps_per_student"], f"{row['closed_form']:.2f}", f"{row['speedup_steps']:.2f}",
             f"{row['spread_steps']:.2f}", f"{row['ratio_steps']:.3f}", f"{row['speedup_wall']:.2f}",
             f"{row['spread_wall']:.2f}", f"{row['ratio_wall']:.3f}", f"{row['speedup_wall_training_only']:.2f}",
             f"{row['label_share_reference']:.0%}", f"{row['speedup_cpu']:.2f}", f"{row['ratio_cpu']:.3f}",
             f"{row['speedup_cpu_training_only']:.2f}")
    return "  ".join(f"{c!s:>8}" for c in cells)


def verdicts(rows: list[dict]) -> dict:
    """The issue's targets: sample-steps within 10% wherever the assumptions hold; wall seconds
    within 25% on mnist-5k with N_t = 32 (teacher-side, the closed form the paper reports)."""
    steps = [r for r in rows if r["assumptions_hold"]]
    wall = [r for r in rows if r["dataset"] == "mnist-5k" and r["n_teachers"] == 32 and r["side"] == "teacher"]
    return {
        "steps_within_10pct": all(abs(r["ratio_steps"] - 1) <= TOLERANCE_STEPS for r in steps),
        "steps_misses": [_where(r) for r in steps if abs(r["ratio_steps"] - 1) > TOLERANCE_STEPS],
        "wall_mnist5k_nt32_within_25pct": (all(abs(r["ratio_wall"] - 1) <= TOLERANCE_WALL for r in wall)
                                           if wall else None),
        "wall_misses": [_where(r) for r in wall if abs(r["ratio_wall"] - 1) > TOLERANCE_WALL],
        "cpu_mnist5k_nt32_within_25pct": (all(abs(r["ratio_cpu"] - 1) <= TOLERANCE_WALL for r in wall)
                                          if wall and all("ratio_cpu" in r for r in wall) else None),
    }


def _where(row: dict) -> str:
    return (f"{row['dataset']} {row['side']} N_t={row['n_teachers']} N_s={row['n_students']} "
            f"r={row['student_slices']}: {row['ratio_steps']:.3f} (steps), {row['ratio_wall']:.3f} (wall)")


# -- the plot -----------------------------------------------------------------------------------------------
PANEL_W, PANEL_H, CELL_W, CELL_H, TOP = 270, 250, 350, 340, 150  # pixels


def plot(rows: list[dict], path: Path) -> None:
    """Teacher-side speed-up against N_s: one panel per (dataset, N_t), the closed form as lines,
    measured sample-steps as filled dots and wall seconds as open squares, both with error bars."""
    from PIL import Image, ImageDraw

    teacher = [r for r in rows if r["side"] == "teacher"]
    datasets = sorted({r["dataset"] for r in teacher})
    columns = sorted({r["n_teachers"] for r in teacher})
    width, height = max(80 + CELL_W * len(columns), 900), TOP + CELL_H * len(datasets)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    slices = sorted({r["student_slices"] for r in teacher})
    _legend(draw, slices, width)
    left0 = (width - CELL_W * len(columns)) // 2 + 70
    for d_index, dataset in enumerate(datasets):
        for n_index, n_teachers in enumerate(columns):
            mine = [r for r in teacher if r["dataset"] == dataset and r["n_teachers"] == n_teachers]
            if mine:
                left, top = left0 + CELL_W * n_index, TOP + 10 + CELL_H * d_index
                _panel(draw, (left, top, left + PANEL_W, top + PANEL_H), dataset, n_teachers, mine, slices,
                       first=n_index == 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _panel(draw, box, dataset: str, n_teachers: int, rows: list[dict], slices: list[int], first: bool) -> None:
    values = [r[k] for r in rows for k in ("closed_form", "speedup_steps", "speedup_wall")]
    values += [r["speedup_wall"] + r["spread_wall"] for r in rows]
    values += [theory.teacher_side_speedup(n_teachers, n, r) for r in slices for n in theory.divisors(n_teachers)]
    y_ticks = powers_of_two(min(values), max(values))
    panel = LogPanel(draw, box, (0.75, n_teachers * 1.33), (y_ticks[0], y_ticks[-1]))
    panel.frame(powers_of_two(1, n_teachers), y_ticks, f"{dataset}, N_t = {n_teachers}", "N_s (students)",
                "speed-up" if first else None)
    for i, r in enumerate(slices):
        color = PALETTE[i % len(PALETTE)]
        theory_points = [(n, theory.teacher_side_speedup(n_teachers, n, r)) for n in theory.divisors(n_teachers)]
        panel.line(theory_points, color)
        for row in (x for x in rows if x["student_slices"] == r):
            shift = (i - (len(slices) - 1) / 2) * 7  # side by side, so the bars do not hide each other
            panel.point(row["n_students"], row["speedup_steps"], row["spread_steps"], color, True, shift - 3)
            panel.point(row["n_students"], row["speedup_wall"], row["spread_wall"], color, False, shift + 3)


def _legend(draw, slices: list[int], width: int) -> None:
    """Title, then two legend rows drawn with the chart's own marks (the bundled font has no symbols)."""
    ink = "#222222"
    draw.text((width / 2, 14), "Teacher-side forget requests: speed-up of PURGE over the baseline student",
              fill=ink, font=chart_font(19), anchor="mt")
    colours = [("line", PALETTE[i % len(PALETTE)], f"r = {r}") for i, r in enumerate(slices)]
    legend_row(draw, width / 2, 58, [*colours, ("text", ink, "(student slices per chunk)")])
    legend_row(draw, width / 2, 88, [("line", "#777777", "closed form"), ("dot", "#777777", "measured sample-steps"),
                                     ("square", "#777777", "measured wall seconds")])
    draw.text((width / 2, 108), "error bars: bootstrap s.d. over the requests; both axes on log scales", fill=ink,
              font=chart_font(14), anchor="mt")


# -- main -----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="digits, N_t = 8, r in {1, 2, 4}, 4 requests per side")
    mode.add_argument("--smoke", action="store_true", help="the smallest layouts, for the tests (seconds)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (tables go to stderr)")
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for the CSV and PNG (default assets/)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--datasets", nargs="+", help="override the preset's datasets")
    parser.add_argument("--teachers", nargs="+", type=int, help="override the preset's N_t values")
    parser.add_argument("--students", nargs="+", type=int, help="N_s values (default: every divisor of N_t)")
    parser.add_argument("--slices", nargs="+", type=int, help="override the preset's student slices r")
    parser.add_argument("--requests", type=int, help="K, requests per side and layout")
    parser.add_argument("--epochs", type=int, help="SISA epoch budget (default 2: equal epochs per step)")
    parser.add_argument("--teacher-fraction", type=float, help="share of the teacher pool used (default 1)")
    parser.add_argument("--seed", type=int, help="seed of the runs and of the request draws")
    parser.add_argument("--threads", type=int, help="torch threads per run (0: the engine's choice)")
    parser.add_argument("--name", help="stem of the CSV/PNG file names")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="CSV",
                        help="run nothing: join CSVs of earlier runs into one CSV and plot under --out/--name")
    parser.add_argument("--markdown", action="store_true", help="with --merge: print the RESULTS.md tables")
    return parser.parse_args(argv)


TEXT_COLUMNS = ("dataset", "side", "note", "cpu_model", "torch", "commit")  # never parsed as numbers


LAYOUT_COLUMNS = {"dataset": "dataset", "n_teachers": "N_t", "n_students": "N_s", "student_slices": "r",
                  "steps_per_student": "R = cr", "closed_form": "closed form",
                  "speedup_steps": "measured, sample-steps", "spread_steps": "s.d.", "ratio_steps": "measured / closed",
                  "speedup_wall": "measured, wall s", "spread_wall": "s.d.", "ratio_wall": "wall / closed",
                  "speedup_wall_training_only": "wall s w/o labels", "label_share_reference": "labels in reference s",
                  "speedup_cpu": "measured, CPU s", "ratio_cpu": "CPU / closed",
                  "speedup_cpu_training_only": "CPU s w/o labels"}
FORMATS = {"ratio_steps": "{:.3f}", "ratio_wall": "{:.2f}", "ratio_cpu": "{:.2f}", "label_share_reference": "{:.0%}"}


def _formatted(row: dict) -> dict:
    """Speed-ups to 2 decimals, ratios to the closed form to 3 (sample-steps) or 2 (wall), shares in %."""
    return {k: FORMATS.get(k, "{:.2f}").format(v) if isinstance(v, float) else v for k, v in row.items()}


def _span(values) -> str:
    values = [v for v in values if isinstance(v, float)]  # rows of older runs may lack a column
    return f"{min(values):.3f} - {max(values):.3f}" if values else "n/a"


def _per_closed(rows: list[dict], key: str):
    return (r[key] / r["closed_form"] for r in rows if isinstance(r.get(key), float))


def markdown_report(rows: list[dict]) -> str:
    """The Markdown tables of RESULTS.md, generated from the CSV (never typed by hand): a summary per
    (dataset, side, N_t), then every layout."""
    groups = sorted({(r["dataset"], r["side"], r["n_teachers"]) for r in rows})
    summary = []
    for group in groups:
        mine = [r for r in rows if (r["dataset"], r["side"], r["n_teachers"]) == group]
        summary.append({"dataset": group[0], "side": group[1], "n_teachers": group[2], "layouts": len(mine),
                        "requests": sum(r["requests"] for r in mine), "steps": _span(r["ratio_steps"] for r in mine),
                        "wall": _span(r["ratio_wall"] for r in mine),
                        "train": _span(_per_closed(mine, "speedup_wall_training_only")),
                        "cpu": _span(r.get("ratio_cpu") for r in mine),
                        "cpu_train": _span(_per_closed(mine, "speedup_cpu_training_only"))})
    parts = [markdown_table(summary, {"dataset": "dataset", "side": "side", "n_teachers": "N_t",
                                      "layouts": "layouts", "requests": "requests",
                                      "steps": "measured / closed, sample-steps", "wall": "same, wall s",
                                      "train": "same, wall s without labels", "cpu": "same, CPU s",
                                      "cpu_train": "same, CPU s without labels"})]
    for side in ("teacher", "student"):
        mine = sorted((r for r in rows if r["side"] == side),
                      key=lambda r: (r["dataset"], r["n_teachers"], r["n_students"], r["student_slices"]))
        parts.append(f"{side}-side requests, every layout:\n\n"
                     + markdown_table([_formatted(r) for r in mine], LAYOUT_COLUMNS))
    return "\n\n".join(parts)


def merge(args: argparse.Namespace) -> int:
    rows = read_csv(args.merge, TEXT_COLUMNS)
    stem = args.out / (args.name or FORGET_GRIDS["full"].name)
    write_csv(stem.with_suffix(".csv"), rows)
    plot(rows, stem.with_suffix(".png"))
    if args.markdown:
        print(markdown_report(rows))
        return 0
    result = {"rows": len(rows), "verdicts": verdicts(rows), "files": [str(stem.with_suffix(s)) for s in (".csv",
                                                                                                           ".png")]}
    print(json.dumps(result) if args.json else f"# merged {len(rows)} rows; verdicts: {json.dumps(result)}")
    return 0


def settings_from(args: argparse.Namespace) -> ForgetGrid:
    preset = FORGET_GRIDS["quick" if args.quick else "smoke" if args.smoke else "full"]
    overrides = {"datasets": args.datasets, "teachers": args.teachers, "students": args.students,
                 "slices": args.slices, "requests": args.requests, "epochs": args.epochs,
                 "teacher_fraction": args.teacher_fraction,
                 "seed": args.seed, "threads": args.threads, "name": args.name}
    chosen = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None}
    return ForgetGrid(**{**asdict(preset), **chosen})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args)
    settings = settings_from(args)
    quiet = args.json
    info = hardware(threads=settings.threads or None)
    say(header_line(info), quiet)
    layouts = grids(settings)
    say(f"# {len(layouts)} layouts, {settings.requests} requests per side, epochs {settings.epochs}, "
        f"seed {settings.seed}", quiet)
    say("  ".join(f"{c:>8}" for c in COLUMNS), quiet)
    machine = machine_columns(info)
    rows, records, start = [], [], time.perf_counter()
    for grid in layouts:
        with tempfile.TemporaryDirectory(prefix="bench-forget-") as tmp:
            layout_rows, record = run_layout(grid, Path(tmp))
        rows += [{**row, **machine} for row in layout_rows]
        records.append({"dataset": grid.base.dataset, **record})
        for row in layout_rows:
            say(table_line(row), quiet)
    seconds = time.perf_counter() - start
    info["load_average_end"] = round(os.getloadavg()[0], 2)
    files = {"csv": str(args.out / f"{settings.name}.csv")}
    write_csv(Path(files["csv"]), rows)
    if not args.no_plot:
        files["png"] = str(args.out / f"{settings.name}.png")
        plot(rows, Path(files["png"]))
    result = {"hardware": {**info, "commit": machine["commit"]}, "settings": asdict(settings), "rows": rows,
              "verdicts": verdicts(rows), "grids": [g.to_dict() for g in layouts], "layouts": records,
              "seconds": seconds, "files": files}
    say(f"# {seconds:.0f} s in all; verdicts: {json.dumps(result['verdicts'])}; wrote {', '.join(files.values())}",
        quiet)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
