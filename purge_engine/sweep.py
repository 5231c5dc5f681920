"""Sweeps: train a grid of layouts, serve seeded random forget requests on each, and store what was
measured next to what the plan and the closed forms predict (DESIGN section 7).

    grid = SweepGrid(SWEEP_BASE.replace(epochs=8), n_teachers=(8,), n_students=(1, 2, 4, 8), student_slices=(1, 2))
    results = run_sweep(grid, "runs")          # -> runs/sweeps/<sweep_id>/results.json

For each layout (N_t, N_s, r): an Experiment is created in a scratch directory and trained (teachers
and the grid's student methods: PURGE, single-teacher and baseline unless it names fewer), its test
accuracy is measured, then K teacher-side requests (one sample each, in a teacher shard and in no
student shard) and K student-side requests (in a student shard only) are served one at a time.
Student data is always "disjoint", so both kinds of sample exist. The request samples are drawn from
the plan before any training (request_samples: stratified over what decides a request's cost, seeded
by (seed, N_t)), so the progress total is exact.

The default grid (8 layouts on digits, 4 epochs, K = 3) trains 335,430 sample-steps: about 45 s on
2 CPU cores shared with another busy process.

Speed-ups, per request, in sample-steps (teacher retraining is the same for every method and is
left out, as theory.teacher_side_speedup leaves it out):
  teacher side: baseline students / PURGE students;
  student side: retraining that student from scratch / PURGE students (theory.student_side_speedup).
A layout's measured speed-up is the ratio of the totals over its K requests (an estimate of the
ratio of expectations the closed forms give), with the min and max of the per-request ratios.

Seconds, per request and role ("timing"): wall seconds of the steps trained, soft labels included once
(the engine's StepEvent and LabelEvent seconds), the labels alone, and this process's CPU seconds over
the same spans (Stopwatch). The reference's seconds ("reference_timing"): the baseline students'
(teacher side); that student's training when the layout was trained, labels left out, plus the labels
PURGE recomputed in this request, which a retrain from scratch needs too (student side).
benchmarks/bench_forget.py is a thin script over this module: its speed-up tables are these records.

Results are written once, atomically (temp file + os.replace), when the whole sweep has finished:
a reader never sees a half-written file, and a cancelled or failed sweep leaves nothing behind
(its directory, scratch runs included, is removed).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

import numpy as np

from purge_engine import theory
from purge_engine.config import PurgeConfig, check_field, field_range
from purge_engine.datasets.sources import DATASETS
from purge_engine.events import Cancelled, EventCallback, LabelEvent, PhaseEvent, StepEvent, ignore
from purge_engine.plan import (
    METHODS,
    Plan,
    job_sample_steps,
    make_plan,
    retrain_scope,
    student_sample_steps,
)
from purge_engine.rundir.atomic import atomic_write_json
from purge_engine.seeding import seed_for
from purge_engine.storage import storage_estimate

SWEEPS_DIR = "sweeps"  # under the runs directory
RESULTS = "results.json"
MAX_LAYOUTS = 16
MAX_REQUESTS = 20  # per side and layout


# -- the grid ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    n_teachers: int
    n_students: int
    student_slices: int

    @property
    def label(self) -> str:
        return f"N_t = {self.n_teachers}, N_s = {self.n_students}, r = {self.student_slices}"


# What every layout of a sweep shares unless a grid says otherwise: one teacher slice (teacher retraining is
# the same for every method, so it only lengthens sweeps), 4 epochs, and half the pool held out as student
# data ("disjoint", so both teacher-only and student-only samples exist). Threads stay at PurgeConfig's 1:
# the small models train fastest on one, and 2 oversubscribe a busy CPU.
SWEEP_BASE = PurgeConfig(teacher_slices=1, epochs=4, student_data="disjoint", student_fraction=0.5)
AXES = ("n_teachers", "n_students", "student_slices")  # the PurgeConfig fields a grid lists values of
_BASE_FIELDS = tuple(f.name for f in fields(PurgeConfig) if f.name not in AXES)


@dataclass(frozen=True)
class SweepGrid:
    """A base PurgeConfig and lists of N_t, N_s and r: every combination is a layout (the base with those
    three fields replaced); pairs with N_s > N_t are skipped. The base's own values of the three are unused."""

    base: PurgeConfig = SWEEP_BASE
    n_teachers: tuple[int, ...] = (8,)
    n_students: tuple[int, ...] = (1, 2, 4, 8)
    student_slices: tuple[int, ...] = (1, 2)
    requests: int = 3  # K: requests per side (teacher, student) and layout
    methods: tuple[str, ...] = METHODS  # student methods trained and served; purge and baseline at least

    def __post_init__(self):
        for name in AXES:  # lists from JSON or widgets become tuples of ints
            values = getattr(self, name)
            object.__setattr__(self, name, tuple(int(v) if isinstance(v, np.integer) else v for v in values))
        object.__setattr__(self, "methods", tuple(self.methods))

    @property
    def roles(self) -> tuple[str, ...]:
        return ("teacher", *self.methods)

    def layouts(self) -> list[Layout]:
        """The valid layouts, sorted by N_t, r, N_s (each value once)."""
        pairs = product(sorted(set(self.n_teachers)), sorted(set(self.student_slices)), sorted(set(self.n_students)))
        return [Layout(t, s, r) for t, r, s in pairs if s <= t]

    def skipped(self) -> list[str]:
        """Why some combinations are not layouts (N_s > N_t leaves a student without a teacher)."""
        pairs = sorted({(t, s) for t in self.n_teachers for s in self.n_students if s > t})
        return [f"N_t = {t}, N_s = {s}: more students than teachers" for t, s in pairs]

    def config(self, layout: Layout) -> PurgeConfig:
        return self.base.replace(n_teachers=layout.n_teachers, n_students=layout.n_students,
                                 student_slices=layout.student_slices)

    def validate(self) -> SweepGrid:
        """Raise ValueError naming the field and its allowed range; return self when every layout can run."""
        self.base.validate_fields()
        for name in AXES:
            _check_axis(name, getattr(self, name))
        _check_int("requests", self.requests, 1, MAX_REQUESTS)
        _check_methods(self.methods)
        if self.base.student_data != "disjoint":
            raise ValueError(f"student_data: got {self.base.student_data!r}, must be disjoint in a sweep (its "
                             "requests need samples in a teacher shard only and in a student shard only)")
        self._check_layouts(self.layouts())
        return self

    def _check_layouts(self, layouts: list[Layout]) -> None:
        if not layouts:
            raise ValueError(f"n_students: every value ({_join(self.n_students)}) is larger than every n_teachers "
                             f"({_join(self.n_teachers)}); choose n_students in [1, n_teachers] (a student needs "
                             "at least one teacher)")
        if len(layouts) > MAX_LAYOUTS:
            raise ValueError(f"grid: got {len(layouts)} layouts, must be at most {MAX_LAYOUTS}; choose fewer values "
                             "of n_teachers, n_students or student_slices")
        for layout in layouts:
            self._check_layout(layout)

    def _check_layout(self, layout: Layout) -> None:
        config, n_pool = self.config(layout), DATASETS[self.base.dataset].n_train
        try:
            config.validate(n_pool=n_pool)
        except ValueError as err:
            raise ValueError(f"layout {layout.label}: {err}") from None
        if min(config.pool_sizes(n_pool)) < self.requests:
            raise ValueError(f"requests: got {self.requests}, must be at most {min(config.pool_sizes(n_pool))} "
                             f"(the samples on each side of {self.base.dataset})")

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), **{name: list(getattr(self, name)) for name in AXES},
                "requests": self.requests, "methods": list(self.methods)}

    @classmethod
    def from_dict(cls, data: dict) -> SweepGrid:
        """The grid to_dict wrote; also the flat form of sweeps stored before grids had a base config."""
        data = dict(data)
        base = data.pop("base", None)
        if base is None:  # flat: the config's fields sat beside the axes
            base = {**SWEEP_BASE.to_dict(), **{k: data.pop(k) for k in list(data) if k in _BASE_FIELDS}}
        return cls(base=PurgeConfig.from_dict(base), **data)


def _check_axis(name: str, values: tuple) -> None:
    """Each value of a grid's list through the PurgeConfig field's own metadata (kind and range)."""
    if not values:
        low, high = field_range(name)
        raise ValueError(f"{name}: got an empty list, choose at least one integer in [{low}, {high}]")
    for value in values:
        check_field(name, value)


def _check_methods(methods: tuple) -> None:
    """Known methods, each once, purge and baseline among them (the speed-ups compare the two)."""
    if (not {"purge", "baseline"} <= set(methods) or len(set(methods)) != len(methods)
            or not set(methods) <= set(METHODS)):
        raise ValueError(f"methods: got {list(methods)}, must be distinct methods among {', '.join(METHODS)}, "
                         "purge and baseline included (the speed-ups compare them)")


def _check_int(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name}: got {value!r}, must be an integer in [{low}, {high}]")


def _join(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values)))


# -- what a layout will do, from the plan alone -------------------------------------------------
@dataclass(frozen=True)
class LayoutPlan:
    """A layout's config, plan, request stream ((side, sample id) in serving order) and student methods."""

    layout: Layout
    config: PurgeConfig
    plan: Plan
    requests: tuple[tuple[str, int], ...]
    methods: tuple[str, ...] = METHODS

    def predicted_sample_steps(self) -> int:
        """Every sample-step the layout will train: the whole plan, then each request in turn."""
        total, plan = job_sample_steps(self.plan, self.methods), self.plan
        for _, sample_id in self.requests:
            total += job_sample_steps(plan, self.methods, retrain_scope(plan, [sample_id]))
            plan = plan.without([sample_id])
        return total


def request_samples(plan: Plan, k: int, seed: int) -> tuple[tuple[str, int], ...]:
    """K teacher-side samples (in a teacher shard, in no student shard), then K student-side ones (in a
    student shard only), seeded by (seed, N_t), in a seeded random order per side.

    Stratified over what decides a request's cost, so that K requests realise the closed forms' "uniform
    over teachers" and "uniform over student samples" with little spread even at small K (section 7):
      teacher side: the cells are the teachers, ordered by their place in their student's group (PURGE
        retrains that student from the first chunk the teacher labels), then by id;
      student side: the cells are the (student, step) slices, ordered by the step's place in its student
        (the request rolls the student back to that step), then by student.
    Every cell is hit once per full round of K // cells; the remaining K % cells hits are one uniform
    pick in each of as many equal strata of the ordered cells. The sample is uniform within its cell."""
    rng = np.random.default_rng(seed_for(seed, "sweep-requests", plan.n_teachers))
    drawn = []
    for side, cells in (("teacher", _teacher_cells(plan)), ("student", _student_cells(plan))):
        taken: list[int] = []
        for cell in _stratified(len(cells), k, rng):
            left = np.setdiff1d(cells[cell], taken)
            if left.size == 0:
                raise ValueError(f"requests: got {k}, more than the {side}-side samples of one "
                                 f"{'teacher shard' if side == 'teacher' else 'student slice'} allow")
            taken.append(int(rng.choice(left)))
        drawn += [(side, i) for i in taken]
    return tuple(drawn)


def _stratified(n_cells: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k cell indices into an ordered list of n_cells: every cell once per full round, then one uniform
    pick in each of k % n_cells equal strata; in seeded random order."""
    rounds, rest = divmod(k, n_cells)
    strata = (np.arange(rest) + rng.random(rest)) * n_cells / max(rest, 1)
    return rng.permutation(np.concatenate([np.tile(np.arange(n_cells), rounds), strata.astype(np.int64)]))


def _teacher_cells(plan: Plan) -> list[np.ndarray]:
    """Each teacher's teacher-side-only samples, teachers ordered by (place in their group / group size, id)."""
    where = plan.locations()
    place = {t: (p / len(group), t) for group in plan.mapping for p, t in enumerate(group)}
    return [np.flatnonzero((where["teacher"] == t) & (where["student"] < 0))
            for t in sorted(range(plan.n_teachers), key=place.__getitem__)]


def _student_cells(plan: Plan) -> list[np.ndarray]:
    """Each student step's own slice (student-side-only samples), ordered by (step / steps, student)."""
    where = plan.locations()
    step = where["chunk"] * plan.student_slices + where["student_slice"]
    cells = sorted((m / plan.student_steps(k), k, m) for k in range(plan.n_students)
                   for m in range(plan.student_steps(k)))
    return [np.flatnonzero((where["student"] == k) & (step == m) & (where["teacher"] < 0)) for _, k, m in cells]


def plan_sweep(grid: SweepGrid) -> list[LayoutPlan]:
    """Each layout's plan and requests, from the plan alone (no data loaded, nothing trained)."""
    grid.validate()
    n_pool = DATASETS[grid.base.dataset].n_train
    plans = []
    for layout in grid.layouts():
        config = grid.config(layout)
        plan = make_plan(config, n_pool)
        plans.append(LayoutPlan(layout, config, plan, request_samples(plan, grid.requests, grid.base.seed),
                                grid.methods))
    return plans


def predicted_sample_steps(grid: SweepGrid) -> int:
    """Sample-steps the whole sweep will train (what a progress bar counts toward)."""
    return sum(p.predicted_sample_steps() for p in plan_sweep(grid))


# -- running it ------------------------------------------------------------------------------------
@dataclass
class _Context:
    on_event: EventCallback
    should_stop: Callable[[], bool]
    index: int = 0
    n_layouts: int = 0
    layout: Layout | None = None

    def phase(self, name: str) -> None:
        self.on_event(PhaseEvent("phase", f"layout {self.index + 1} of {self.n_layouts} ({self.layout.label}): "
                                          f"{name}", detail=self.layout.label))

    def forward(self, event) -> None:
        """Engine events go through; its phase names are prefixed with the layout."""
        if isinstance(event, PhaseEvent) and event.name != "done":
            self.phase(event.name.replace("students:", "students: "))
        elif not isinstance(event, PhaseEvent):
            self.on_event(event)

    def check(self) -> None:
        if self.should_stop():
            raise Cancelled(f"sweep cancelled during layout {self.index + 1} of {self.n_layouts}")


def new_sweep_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def run_sweep(grid: SweepGrid, root: Path | str, on_event: EventCallback | None = None,
              should_stop: Callable[[], bool] | None = None, sweep_id: str | None = None,
              executor=None) -> dict:
    """Train and serve every layout of the grid; write <root>/sweeps/<sweep_id>/results.json at the end.

    executor: what trains each layout's constituents (execution.make_executor; default in-process).
    The speed-ups are ratios of sample-steps, which no executor changes; the seconds are its own.

    root: the runs directory. Raises training.Cancelled when should_stop() turns true (checked between
    layouts, between requests, and between training steps); then, as on any error, the sweep's
    directory is removed and no results are written. Returns the results (as written)."""
    from purge_engine.experiment import Experiment  # deferred: the grid and plans need no torch

    layout_plans = plan_sweep(grid)
    ctx = _Context(on_event or ignore, should_stop or (lambda: False), n_layouts=len(layout_plans))
    sweep_id = sweep_id or new_sweep_id()
    folder = Path(root) / SWEEPS_DIR / sweep_id
    started, clock = datetime.now(UTC), time.perf_counter()
    finished = False
    try:
        records = []
        for ctx.index, lp in enumerate(layout_plans):
            ctx.layout = lp.layout
            ctx.check()
            records.append(_run_layout(Experiment, lp, folder / "scratch" / f"layout-{ctx.index}", ctx, executor))
        results = _results(sweep_id, grid, records, started, time.perf_counter() - clock)
        results["executor"] = (executor.describe() if executor is not None
                               else {"executor": "local", "workers": 1})
        shutil.rmtree(folder / "scratch", ignore_errors=True)
        atomic_write_json(folder / RESULTS, results)
        finished = True
        ctx.on_event(PhaseEvent("phase", "done"))
        return results
    finally:
        if not finished:
            shutil.rmtree(folder, ignore_errors=True)


def _run_layout(experiment_cls, lp: LayoutPlan, scratch: Path, ctx: _Context, executor=None) -> dict:
    """Train one layout, measure its accuracy, serve its requests; the record of what was measured."""
    clock = time.perf_counter()
    ctx.phase("training")
    exp = experiment_cls.create(lp.config, scratch, plan=lp.plan, executor=executor)
    trained = Stopwatch()
    train = exp.train(on_event=_tee(ctx.forward, trained), should_stop=ctx.should_stop, methods=lp.methods)
    ctx.phase("evaluating")
    accuracy = exp.evaluate()["accuracy"]
    served = []
    for n, (side, sample_id) in enumerate(lp.requests, start=1):
        ctx.check()
        ctx.phase(f"{side}-side request {n} of {len(lp.requests)}")
        served.append(_serve(exp, side, sample_id, ctx, lp.methods, trained))
    storage = storage_estimate(lp.config, lp.plan)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "layout": asdict(lp.layout), "teachers_per_student": lp.layout.n_teachers / lp.layout.n_students,
        "config": lp.config.to_dict(), "checkpoints": storage["checkpoints"], "storage_bytes": storage["total_bytes"],
        "train": {role: cost.to_dict() for role, cost in train.items()}, "accuracy": accuracy,
        "train_timing": {role: trained.totals(role) for role in ("teacher", *lp.methods)},
        "theory": _theory(lp.layout), "requests": served, "summary": summarise(served),
        "seconds": time.perf_counter() - clock,
    }


def _serve(exp, side: str, sample_id: int, ctx: _Context, methods: tuple[str, ...], trained: Stopwatch) -> dict:
    """One forget request through Experiment.forget(score=False); its measured and predicted cost
    and the speed-up. The accuracy and membership scoring around a request are left out: a scratch
    run needs neither, and on small layouts the scoring costs more than the retraining.
    trained: the Stopwatch of the layout's training, for the student-side reference's seconds."""
    where, watch, roles = exp.plan.locate(sample_id), Stopwatch(), ("teacher", *methods)
    report = exp.forget([sample_id], methods=methods, on_event=_tee(ctx.forward, watch),
                        should_stop=ctx.should_stop, score=False)
    predicted = report.predicted
    measured = {role: {"sample_steps": report.cost[role]["sample_steps"], "seconds": report.cost[role]["seconds"]}
                for role in roles}
    timing = {role: watch.totals(role) for role in roles}
    if side == "teacher":
        reference, reference_timing = measured["baseline"]["sample_steps"], timing["baseline"]
    else:  # that student retrained from scratch on the reduced plan, as theory.student_side_speedup compares
        reference = student_sample_steps(exp.plan, where["student"], 0)
        reference_timing = from_scratch(trained.totals("purge", where["student"]), timing["purge"])
    purge = measured["purge"]["sample_steps"]
    return {"side": side, "sample_id": sample_id, "teacher_id": where["teacher"], "student_id": where["student"],
            "measured": measured, "predicted": {role: predicted[role]["sample_steps"] for role in roles},
            "reference_sample_steps": reference, "speedup": reference / purge if purge else None,
            "timing": timing, "reference_timing": reference_timing}


def _tee(*callbacks: EventCallback) -> EventCallback:
    def each(event) -> None:
        for callback in callbacks:
            callback(event)

    return each


# -- seconds -------------------------------------------------------------------------------------------
TIMING = ("wall", "label_wall", "cpu", "label_cpu")  # the seconds a Stopwatch totals, in that order


class Stopwatch:
    """Seconds per (role, constituent) of the steps trained, from the engine's events (an EventCallback).

    wall: the StepEvent seconds of its trained steps; a step's seconds include the soft labels its data
    fetch computes, once. label_wall: the LabelEvent seconds of the labels computed. cpu, label_cpu:
    this process's CPU seconds (time.process_time) over the same spans: a step's events come in order
    "training", one LabelEvent per slice it labels or reloads, "trained", so its label phase runs from
    "training" to its last label event. With one thread CPU seconds equal wall seconds on an idle
    machine and are not inflated while another process holds the core. A step another process ran
    (StepEvent.worker set, as under the Ray executor) adds no CPU seconds here."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, int], dict[str, float]] = {}
        self._start = self._mark = 0.0

    def __call__(self, event) -> None:
        if isinstance(event, StepEvent) and event.kind == "training":
            self._start = self._mark = time.process_time()
        elif isinstance(event, LabelEvent):
            self._mark = time.process_time()
            if event.kind == "labelled":
                self._add((event.method, event.student_id), label_wall=event.seconds)
        elif isinstance(event, StepEvent) and event.kind == "trained":
            local = not event.worker
            self._add((event.role, event.constituent), wall=event.seconds,
                      cpu=time.process_time() - self._start if local else 0.0,
                      label_cpu=self._mark - self._start if local else 0.0)

    def _add(self, key: tuple[str, int], **seconds: float) -> None:
        row = self.seconds.setdefault(key, dict.fromkeys(TIMING, 0.0))
        for name, value in seconds.items():
            row[name] += value

    def totals(self, role: str, constituent: int | None = None) -> dict[str, float]:
        """{wall, label_wall, cpu, label_cpu} seconds of one constituent, or summed over the role's."""
        rows = [v for (r, c), v in self.seconds.items() if r == role and constituent in (None, c)]
        return {name: sum(row[name] for row in rows) for name in TIMING}


def from_scratch(trained: dict[str, float], request: dict[str, float]) -> dict[str, float]:
    """Seconds of retraining a student from scratch after a student-side request: its training when the
    layout was trained, labels left out, plus the labels PURGE recomputed in the request (the slice that
    lost the sample; a retrain from scratch relabels it too, and reuses every other cached slice)."""
    return {"wall": trained["wall"] - trained["label_wall"] + request["label_wall"],
            "label_wall": request["label_wall"],
            "cpu": trained["cpu"] - trained["label_cpu"] + request["label_cpu"], "label_cpu": request["label_cpu"]}


def _theory(layout: Layout) -> dict:
    row = theory.theory_row(layout.n_teachers, layout.n_students, layout.student_slices)
    return {"teacher_side_speedup": row.teacher_side_speedup, "student_side_speedup": row.student_side_speedup}


def summarise(served: list[dict]) -> dict:
    """Per side: speed-up in sample-steps as the ratio of totals over the requests, the min and max of
    the per-request ratios, the number of requests, and the speed-up in wall seconds (ratio of totals;
    None for records stored before requests had a timing)."""
    summary = {}
    for side in ("teacher", "student"):
        rows = [r for r in served if r["side"] == side and r["speedup"] is not None]
        purge = sum(r["measured"]["purge"]["sample_steps"] for r in rows)
        ratios = [r["speedup"] for r in rows]
        summary[side] = {"speedup": sum(r["reference_sample_steps"] for r in rows) / purge if purge else None,
                         "min": min(ratios, default=None), "max": max(ratios, default=None), "n": len(rows),
                         "speedup_wall": _wall_speedup(rows)}
    return summary


def _wall_speedup(rows: list[dict]) -> float | None:
    if not rows or any("timing" not in r for r in rows):
        return None
    purge = sum(r["timing"]["purge"]["wall"] for r in rows)
    return sum(r["reference_timing"]["wall"] for r in rows) / purge if purge else None


def _results(sweep_id: str, grid: SweepGrid, records: list[dict], started: datetime, seconds: float) -> dict:
    import torch  # deferred: recorded with the results, as a benchmark names its machine

    return {"sweep_id": sweep_id, "grid": grid.to_dict(), "skipped": grid.skipped(), "layouts": records,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds,
            "environment": {"torch": torch.__version__, "threads": torch.get_num_threads()}}


# -- reading stored sweeps ----------------------------------------------------------------------------
def sweeps_dir(runs_dir: Path | str) -> Path:
    return Path(runs_dir) / SWEEPS_DIR


def list_sweeps(runs_dir: Path | str) -> list[Path]:
    """results.json of every finished sweep under runs_dir, newest first (ids start with the UTC time)."""
    root = sweeps_dir(runs_dir)
    if not root.is_dir():
        return []
    return sorted((p / RESULTS for p in root.iterdir() if (p / RESULTS).is_file()), key=lambda p: p.parent.name,
                  reverse=True)


def load_sweep(path: Path | str) -> dict:
    """A sweep's results (path: its results.json or its directory); ValueError when unreadable."""
    path = Path(path)
    path = path / RESULTS if path.is_dir() else path
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"sweep: {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"sweep: {path} is not valid JSON ({err})") from None
    if not isinstance(results, dict) or "layouts" not in results:
        raise ValueError(f"sweep: {path} holds no sweep results (no 'layouts')")
    return results
