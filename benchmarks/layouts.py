"""Every layout the benchmarks train, in one place, each named for what it is.

A benchmark's `--quick` run trains SMALL_DIGITS unless it says here why it needs another; its full run
trains the layouts its README table reports. The dictionaries map the names the scripts' flags and
JSON rows use (`--layouts digits mnist-5k`, benchmarks/gpu_check.sh) to these layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from purge_engine.config import PurgeConfig

# -- runs trained whole (bench_audit, bench_executors, bench_lanes, bench_paper_scale) --------------------
DEFAULT_DIGITS = PurgeConfig()  # the default run: digits, 8 teachers, 4 students, 20 epochs
MNIST5K_8T_2S = PurgeConfig(dataset="mnist-5k", n_teachers=8, n_students=2, teacher_slices=1, student_slices=1,
                            epochs=2, student_data="disjoint", student_fraction=0.3)
# The --quick run of bench_executors, bench_lanes and bench_paper_scale (one layout, so their quick timings
# compare): seconds, not minutes.
SMALL_DIGITS = PurgeConfig(n_teachers=4, n_students=2, epochs=2)
# The paper's scale (32 teachers, 8 students on the full Fashion-MNIST), trained through the CLI.
PAPER_FASHION_MNIST = PurgeConfig(dataset="fashion-mnist", n_teachers=32, n_students=8, epochs=2)

# By the name bench_executors' and bench_lanes' flags and rows use ("quick": what --quick trains).
BY_NAME = {"digits": DEFAULT_DIGITS, "mnist-5k": MNIST5K_8T_2S, "quick": SMALL_DIGITS}

# -- soak.py: many requests per run, so smaller and faster than the rest; each covers another corner of
# the plan (overlapping or disjoint student data, a partial teacher pool, N_s = N_t). --quick takes the first two.
SOAK = {
    "4t-2s-overlap": PurgeConfig(n_teachers=4, n_students=2, teacher_slices=2, student_slices=2, epochs=2,
                                 batch_size=64, threads=1, student_data="overlap", student_fraction=1.0),
    "6t-3s-disjoint": PurgeConfig(n_teachers=6, n_students=3, teacher_slices=3, student_slices=1, epochs=2,
                                  batch_size=64, threads=1, student_data="disjoint", student_fraction=0.3,
                                  teacher_fraction=0.5),
    "3t-3s-overlap": PurgeConfig(n_teachers=3, n_students=3, teacher_slices=1, student_slices=3, epochs=3,
                                 batch_size=64, threads=1, student_data="overlap", student_fraction=0.4),
}


# -- bench_forget.py: sweeps of layouts, one sweep.SWEEP_BASE layout per (dataset, N_t, N_s, r) -------------
@dataclass(frozen=True)
class ForgetGrid:
    """The layouts bench_forget sweeps and how it measures them (its JSON's "settings")."""

    datasets: tuple[str, ...] = ("digits", "mnist-5k")
    teachers: tuple[int, ...] = (8, 16, 32)
    slices: tuple[int, ...] = (1, 2, 4)
    students: tuple[int, ...] = ()  # N_s values; empty: every divisor of N_t
    requests: int = 8  # K per side
    # 2, as SMALL_DIGITS, for bench_forget's own reason: the SISA rule then gives every student step the
    # same number of epochs for every R, an assumption of the closed forms it checks.
    epochs: int = 2
    teacher_fraction: float = 1.0  # share of the teacher pool used (teacher cost is not in the ratios)
    batch_size: int = 32
    seed: int = 0
    threads: int = 1  # one thread: timings stay stable on a shared machine (sample-steps do not depend on it)
    name: str = "bench_forget"  # stem of the CSV and PNG files


FORGET_GRIDS = {
    "full": ForgetGrid(),
    "quick": ForgetGrid(datasets=("digits",), teachers=(8,), slices=(1, 2, 4), requests=4, name="bench_forget_quick"),
    "smoke": ForgetGrid(datasets=("digits",), teachers=(4,), slices=(1,), students=(1, 4), requests=2,
                        name="bench_forget_smoke"),
}
FORGET_STUDENT_FRACTION = {"digits": 0.5, "mnist-5k": 0.125}  # |D^S|: 702 of 1,404 and 500 of 4,002 samples

# -- bench_throughput.py: one slice step, no run ------------------------------------------------------------
THROUGHPUT_DATASET, THROUGHPUT_MODEL = "mnist-5k", "mnist-cnn"  # the paper's MNIST CNN
MEMORY_FORMAT_MODELS = (("digits", "digits-cnn"), (THROUGHPUT_DATASET, THROUGHPUT_MODEL))  # (dataset, model)
