"""Engine training throughput against a bare PyTorch loop, and what checkpoints and labels cost.

On the paper's MNIST CNN (models "mnist-cnn") over mnist-5k tensors, in one process:

  1. samples per second of the engine's slice step (training.train_slice_step) and of a bare
     loop a PyTorch user would write (default Adam, randperm batches, cross-entropy) over the
     same data tensor, batch size and architecture; timed interleaved after a warm-up; ratio;
  2. one checkpoint (save_checkpoint: safetensors, sha256, fsync, JSON sidecar) and one restore,
     as a share of a slice step's time at several step sizes;
  3. soft labels (LabelCache: teacher forward in eval()/inference_mode, then saved) per sample
     and teacher, against a training sample-step; a cached slice's reload; predict_proba's own
     batch size;
  4. the memory formats (channels_last against contiguous).

Lanes (several constituents at once, the GPU path) against the loop: benchmarks/bench_lanes.py.

    .venv/bin/python benchmarks/bench_throughput.py             # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_throughput.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import hardware, header_line, interleaved, say, seconds_of
from layouts import MEMORY_FORMAT_MODELS, THROUGHPUT_DATASET, THROUGHPUT_MODEL

from purge_engine.datasets.readers import load_dataset
from purge_engine.events import ignore
from purge_engine.losses import TEACHER_LOSS
from purge_engine.models import build_model
from purge_engine.rundir.checkpoints import load_checkpoint, save_checkpoint
from purge_engine.rundir.store import RunStore
from purge_engine.soft_labels import LabelCache
from purge_engine.training import predict_proba, train_slice_step

ARCH, DATASET = THROUGHPUT_MODEL, THROUGHPUT_DATASET
TARGET_RATIO = 0.9  # the issue: engine throughput at least 0.9 of the bare loop


# -- 1. the engine's step against a bare loop ---------------------------------------------------------
def bare_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
              generator: torch.Generator) -> None:
    """What a PyTorch user writes: Adam with its defaults, a randperm per epoch, cross-entropy."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, x.shape[0], batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()


def engine_vs_bare(x: torch.Tensor, y: torch.Tensor, args) -> dict:
    """Samples per second of both loops (median over interleaved repeats) and their ratio."""
    spec = load_dataset(DATASET).spec
    engine_model, bare_model = build_model(ARCH, spec, 1), build_model(ARCH, spec, 1)
    generator = torch.Generator().manual_seed(1)
    position = iter(range(10**6))  # a new batch order each repeat, as successive steps get
    fns = {
        "engine": lambda: train_slice_step(engine_model, x, (y,), TEACHER_LOSS, args.epochs, args.batch_size,
                                           args.lr, (0, "teacher", 0, next(position))),
        "bare": lambda: bare_loop(bare_model, x, y, args.epochs, args.batch_size, args.lr, generator),
    }
    interleaved(fns, 1)  # warm-up: allocator, oneDNN primitives, first-touch pages
    times = interleaved(fns, args.repeats)
    samples = x.shape[0] * args.epochs
    rates = {name: samples / float(np.median(t)) for name, t in times.items()}
    pair_ratios = [b / e for e, b in zip(times["engine"], times["bare"], strict=True)]
    return {"samples_per_step": samples, "engine_samples_per_s": rates["engine"],
            "bare_samples_per_s": rates["bare"], "ratio": rates["engine"] / rates["bare"],
            "ratio_min": min(pair_ratios), "ratio_max": max(pair_ratios), "repeats": args.repeats}


def memory_formats(args) -> dict:
    """The engine's slice step with the run's two memory formats (data and weights laid out alike),
    interleaved: samples per second of each, per architecture. The default ("channels_last") is
    chosen by this measurement; either is exact, but a run keeps the one it was created with."""
    out = {}
    for dataset, arch in MEMORY_FORMAT_MODELS:
        fns = {fmt: _format_step(dataset, arch, fmt, args) for fmt in ("channels_last", "contiguous")}
        interleaved(fns, 1)
        times = interleaved(fns, args.repeats)
        n = min(args.samples, load_dataset(dataset).n_train) * args.epochs
        rates = {fmt: n / float(np.median(t)) for fmt, t in times.items()}
        out[arch] = {**{f"{fmt}_samples_per_s": r for fmt, r in rates.items()},
                     "channels_last_over_contiguous": rates["channels_last"] / rates["contiguous"]}
    return out


def _format_step(dataset: str, arch: str, fmt: str, args):
    bundle = load_dataset(dataset, memory_format=fmt).to(args.device)
    x, y = bundle.train_x[:args.samples], bundle.train_y[:args.samples]
    layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    model = build_model(arch, bundle.spec, 1).to(args.device).to(memory_format=layout)
    position = iter(range(10**6))
    return lambda: train_slice_step(model, x, (y,), TEACHER_LOSS, args.epochs, args.batch_size, args.lr,
                                    (0, "teacher", 0, next(position)))


# -- 2. checkpoints ----------------------------------------------------------------------------------------
def checkpoint_costs(model: torch.nn.Module, root: Path, samples_per_s: float, repeats: int) -> dict:
    """Median seconds of one save and one restore, and the save's share of a step of S sample-steps."""
    stem = RunStore(root).checkpoint_stem("teacher", 0, 0)
    save = [seconds_of(lambda: save_checkpoint(stem, model.state_dict(), {"key": "k"})) for _ in range(repeats)]
    device = torch.device("cpu")
    load = [seconds_of(lambda: load_checkpoint(stem, {"key": "k"}, device)) for _ in range(repeats)]
    save_s, load_s = float(np.median(save)), float(np.median(load))
    share = {str(s): save_s / (s / samples_per_s + save_s) for s in (100, 1_000, 10_000)}
    return {"save_seconds": save_s, "restore_seconds": load_s, "save_in_training_samples": save_s * samples_per_s,
            "save_share_of_step_by_sample_steps": share,
            "megabytes": stem.with_suffix(".safetensors").stat().st_size / 1e6}


# -- 3. soft labels -------------------------------------------------------------------------------------------
def label_costs(teacher: torch.nn.Module, x: torch.Tensor, root: Path, samples_per_s: float, chunk: int,
                repeats: int) -> dict:
    """LabelCache computing one slice's labels with one teacher (teacher already in memory), and
    reloading a cached slice, against training."""
    cache = LabelCache(RunStore(root), lambda _t: teacher, lambda ids: x[torch.as_tensor(ids)], 10, 2.0,
                       torch.device("cpu"), ignore)
    ids = np.arange(chunk, dtype=np.int64)
    keys = iter(range(10**6))
    cache.get("purge", 0, 0, 0, (0,), ("warm-up",), ids)
    compute = [seconds_of(lambda: cache.get("purge", 0, 0, 0, (0,), (f"k{next(keys)}",), ids))
               for _ in range(repeats)]
    last = (f"k{next(keys)}",)
    cache.get("purge", 0, 0, 0, (0,), last, ids)
    reload = [seconds_of(lambda: cache.get("purge", 0, 0, 0, (0,), last, ids)) for _ in range(repeats)]
    per_sample = float(np.median(compute)) / chunk
    return {"chunk": chunk, "label_seconds": float(np.median(compute)), "per_sample_teacher_seconds": per_sample,
            "label_over_training_sample_step": per_sample * samples_per_s,
            "reload_seconds": float(np.median(reload)),
            "predict_proba_samples_per_s": predict_rates(teacher, x[:max(4 * chunk, 1024)])}


def predict_rates(model: torch.nn.Module, inputs: torch.Tensor) -> dict:
    """Forward samples per second of predict_proba at several inference batch sizes (engine: 1024)."""
    rates = {}
    for batch in (64, 256, 1024):
        predict_proba(model, inputs, batch_size=batch)  # warm-up
        rates[str(batch)] = inputs.shape[0] / min(seconds_of(lambda b=batch: predict_proba(model, inputs,
                                                                                            batch_size=b))
                                                  for _ in range(3))
    return rates


# -- main ----------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats (under a minute)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (text to stderr)")
    parser.add_argument("--samples", type=int, default=2048, help="samples per timed step (default 2048)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32, help="the engine's default batch size")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared host)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.repeats = min(args.samples, 512), min(args.repeats, 3)
    return args


def report_lines(result: dict) -> list[str]:
    t, c, lab = result["throughput"], result["checkpoint"], result["labels"]
    lines = [
        f"engine {t['engine_samples_per_s']:.0f} samples/s, bare loop {t['bare_samples_per_s']:.0f} samples/s: "
        f"ratio {t['ratio']:.3f} (per-repeat {t['ratio_min']:.3f}-{t['ratio_max']:.3f}; target >= {TARGET_RATIO})",
        f"checkpoint save {c['save_seconds'] * 1e3:.1f} ms ({c['megabytes']:.1f} MB) = "
        f"{c['save_in_training_samples']:.0f} training sample-steps; restore {c['restore_seconds'] * 1e3:.1f} ms; "
        "share of a step of 100 / 1,000 / 10,000 sample-steps: "
        + " / ".join(f"{v:.0%}" for v in c["save_share_of_step_by_sample_steps"].values()),
        f"labels: {lab['per_sample_teacher_seconds'] * 1e6:.0f} us per sample per teacher = "
        f"{lab['label_over_training_sample_step']:.2f} training sample-steps; cached slice reload "
        f"{lab['reload_seconds'] * 1e3:.2f} ms; predict_proba samples/s by batch "
        + ", ".join(f"{b}: {r:.0f}" for b, r in lab["predict_proba_samples_per_s"].items()),
    ]
    for arch, m in result.get("memory_format", {}).items():
        lines.append(f"{arch}: channels_last {m['channels_last_samples_per_s']:.0f} samples/s, contiguous "
                     f"{m['contiguous_samples_per_s']:.0f}: ratio {m['channels_last_over_contiguous']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    info = hardware(args.device, args.threads)
    say(header_line(info), args.json)
    bundle = load_dataset(DATASET).to(args.device)
    x, y = bundle.train_x[:args.samples], bundle.train_y[:args.samples]
    result = {"hardware": info, "settings": {k: v for k, v in vars(args).items() if k != "json"},
              "throughput": engine_vs_bare(x, y, args)}
    rate = result["throughput"]["engine_samples_per_s"]
    model = build_model(ARCH, bundle.spec, 2).to(args.device)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        result["checkpoint"] = checkpoint_costs(model, Path(tmp), rate, args.repeats)
        result["labels"] = label_costs(model, bundle.train_x, Path(tmp), rate, min(500, args.samples), args.repeats)
    result["memory_format"] = memory_formats(args)
    result["verdicts"] = {"engine_at_least_0.9_of_bare": result["throughput"]["ratio"] >= TARGET_RATIO}
    for line in report_lines(result):
        say(line, args.json)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
