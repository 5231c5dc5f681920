"""The partition plan: which sample sits in which shard, chunk and slice, and what a forget request costs.

Pure: numpy and arithmetic only, no torch. Training, forgetting, cost prediction, the CLI
and the mapping picture all read the same Plan (STYLE rule 3).

Ids: sample ids are positions in the train pool. Steps are 0-based: teacher step m trains
on slices 0..m; student step m = chunk_id * student_slices + slice_id trains on every slice
of the chunks before and slices 0..slice_id of the current chunk (DESIGN section 4).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from purge_engine.config import PurgeConfig
from purge_engine.seeding import seed_for
from purge_engine.vocabulary import title

METHODS = ("purge", "single_teacher", "baseline")
FULL_RETRAIN_METHODS = ("purge",)  # a full retrain (the reference cost): every teacher and these students
METHOD_TITLES = {m: title(m) for m in (*METHODS, "full_retrain")}  # kept for importers; vocabulary.title is the source

Slices = tuple[np.ndarray, ...]


# -- epochs --------------------------------------------------------------------
def sisa_epochs(n_steps: int, epochs: int) -> tuple[int, ...]:
    """Epochs per step under SISA's rule (section 4.6): step m (1-based) trains
    floor(m*a) - floor((m-1)*a) epochs with a = 2e/(S+1), at least one.

    Step m sees m slices, so the total is e passes over the shard when a is whole.
    """
    per_step = ((m * 2 * epochs) // (n_steps + 1) - ((m - 1) * 2 * epochs) // (n_steps + 1) for m in
                range(1, n_steps + 1))
    return tuple(max(1, n) for n in per_step)


def passes_over_shard(per_step: tuple[int, ...]) -> float:
    """Epochs of work per step expressed as passes over the whole shard: step m (1-based) sees m of
    the S slices, so it costs epochs_m * m / S passes (equal slices)."""
    n_steps = len(per_step)
    return sum(e * m / n_steps for m, e in enumerate(per_step, start=1))


def epoch_warnings(config: PurgeConfig) -> list[str]:
    """Sentences for every constituent kind whose steps outnumber the budget: the floor of one epoch
    per step then trains more than `epochs` passes (section 4.6 keeps the floor so every slice is
    trained on; the overrun is shown, never silent)."""
    kinds = {"Teacher": config.teacher_slices,
             "Student": max(len(g) for g in make_mapping(config.n_teachers, config.n_students)) * config.student_slices}
    warnings = []
    for name, n_steps in kinds.items():
        if 2 * config.epochs >= n_steps + 1:
            continue
        passes = passes_over_shard(sisa_epochs(n_steps, config.epochs))
        warnings.append(f"{name} constituents have {n_steps} steps but an epoch budget of {config.epochs}: every "
                        f"step trains at least one epoch, so they train {passes:.1f} passes over their shard, not "
                        f"{config.epochs}. Set epochs to at least {(n_steps + 2) // 2} to stay on budget.")
    return warnings


# -- the plan --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Plan:
    n_pool: int
    teacher_shards: tuple[Slices, ...]  # [teacher_id][slice_id] -> sample ids
    mapping: tuple[tuple[int, ...], ...]  # [student_id] -> teacher ids, in chunk order
    student_shards: tuple[tuple[Slices, ...], ...]  # [student_id][chunk_id][slice_id] -> sample ids
    teacher_epochs: tuple[int, ...]  # [step]
    student_epochs: tuple[tuple[int, ...], ...]  # [student_id][step]
    forgotten: frozenset[int] = field(default_factory=frozenset)

    # -- shape ---------------------------------------------------------------------
    @property
    def n_teachers(self) -> int:
        return len(self.teacher_shards)

    @property
    def n_students(self) -> int:
        return len(self.student_shards)

    @property
    def teacher_slices(self) -> int:
        return len(self.teacher_shards[0])

    @property
    def student_slices(self) -> int:
        return len(self.student_shards[0][0])

    def n_chunks(self, student_id: int) -> int:
        return len(self.mapping[student_id])

    def student_steps(self, student_id: int) -> int:
        """R_k = c_k * r."""
        return self.n_chunks(student_id) * self.student_slices

    def chunk_and_slice(self, step: int) -> tuple[int, int]:
        return divmod(step, self.student_slices)

    # -- data per step ------------------------------------------------------------
    def teacher_shard(self, teacher_id: int) -> np.ndarray:
        return np.concatenate(self.teacher_shards[teacher_id])

    def student_shard(self, student_id: int) -> np.ndarray:
        return np.concatenate([np.concatenate(chunk) for chunk in self.student_shards[student_id]])

    def teacher_step_data(self, teacher_id: int, step: int) -> np.ndarray:
        """Sample ids teacher step `step` trains on: slices 0..step, in slice order."""
        return np.concatenate(self.teacher_shards[teacher_id][: step + 1])

    def student_step_slices(self, student_id: int, step: int) -> list[tuple[int, int]]:
        """(chunk_id, slice_id) pairs student step `step` trains on, in order."""
        return [self.chunk_and_slice(m) for m in range(step + 1)]

    def student_step_data(self, student_id: int, step: int) -> np.ndarray:
        chunks = self.student_shards[student_id]
        return np.concatenate([chunks[c][s] for c, s in self.student_step_slices(student_id, step)])

    def all_teacher_samples(self) -> np.ndarray:
        return np.concatenate([self.teacher_shard(i) for i in range(self.n_teachers)])

    def all_student_samples(self) -> np.ndarray:
        return np.concatenate([self.student_shard(k) for k in range(self.n_students)])

    def is_empty(self, role: str, constituent: int) -> bool:
        """True when forgetting has left the constituent no sample. An empty constituent stays at its
        seeded initialisation (it holds no sample's information), gives no soft labels and takes
        no part in the ensemble's prediction."""
        shards = self.teacher_shards if role == "teacher" else self.student_shards
        return self._count(shards[constituent]) == 0

    @staticmethod
    def _count(nested) -> int:
        return nested.size if isinstance(nested, np.ndarray) else sum(Plan._count(n) for n in nested)

    def labelling_teachers(self, method: str, student_id: int, chunk_id: int) -> tuple[int, ...]:
        """The teachers whose mean softmax labels a chunk (section 4.5), less any empty teacher.
        purge: the first chunk_id+1 mapped teachers; single_teacher: teacher chunk_id alone;
        baseline: every teacher. A chunk left with no teacher is labelled uniformly."""
        group = self.mapping[student_id]
        nominal = {"purge": group[: chunk_id + 1], "single_teacher": (group[chunk_id],),
                   "baseline": tuple(range(self.n_teachers))}
        if method not in nominal:
            raise ValueError(f"method: got {method!r}, must be one of {', '.join(METHODS)}")
        return tuple(t for t in nominal[method] if not self.is_empty("teacher", t))

    # -- where a sample sits ------------------------------------------------------
    @cached_property
    def _index(self) -> dict[str, np.ndarray]:
        """Per sample id: teacher, teacher slice, student, chunk, student slice (-1: none)."""
        index = {key: np.full(self.n_pool, -1, dtype=np.int64)
                 for key in ("teacher", "teacher_slice", "student", "chunk", "student_slice")}
        for i, slices in enumerate(self.teacher_shards):
            for j, ids in enumerate(slices):
                index["teacher"][ids], index["teacher_slice"][ids] = i, j
        for k, chunks in enumerate(self.student_shards):
            for l_, slices in enumerate(chunks):
                for j, ids in enumerate(slices):
                    index["student"][ids], index["chunk"][ids], index["student_slice"][ids] = k, l_, j
        return index

    def locate(self, sample_id: int) -> dict[str, int | None]:
        """Where one sample sits: teacher_id/slice_id on the teacher side, student_id/chunk_id/slice_id
        on the student side; None where it sits on no side."""
        index = self._index
        found = {key: int(values[sample_id]) for key, values in index.items()}
        return {key: (None if value < 0 else value) for key, value in found.items()}

    def locations(self) -> dict[str, np.ndarray]:
        """The whole index as arrays over the pool (-1 where a sample is on no side), for tables."""
        return {key: values.copy() for key, values in self._index.items()}

    # -- forgetting ----------------------------------------------------------------
    def check_request(self, sample_ids) -> tuple[int, ...]:
        """The ids of a forget request, checked; ValueError naming the problem otherwise."""
        ids = _as_id_tuple(sample_ids, self.n_pool)
        already = sorted(set(ids) & self.forgotten)
        if already:
            raise ValueError(f"sample_ids: {_preview(already)} already forgotten; a sample is forgotten once")
        unused = [i for i in ids if self._index["teacher"][i] < 0 and self._index["student"][i] < 0]
        if unused:
            raise ValueError(f"sample_ids: {_preview(unused)} not used by any constituent of this plan; "
                             "nothing to forget")
        return ids

    def without(self, sample_ids) -> Plan:
        """The plan after forgetting: those samples leave, every other sample keeps its shard, chunk
        and slice, and the epochs per step stay as they were. A from-scratch run on this plan is what
        verification compares with (section 5)."""
        ids = self.check_request(sample_ids)
        drop = np.array(ids, dtype=np.int64)

        def keep(slices: Slices) -> Slices:
            return tuple(s[~np.isin(s, drop)] for s in slices)

        return Plan(
            n_pool=self.n_pool,
            teacher_shards=tuple(keep(slices) for slices in self.teacher_shards),
            mapping=self.mapping,
            student_shards=tuple(tuple(keep(chunk) for chunk in chunks) for chunks in self.student_shards),
            teacher_epochs=self.teacher_epochs,
            student_epochs=self.student_epochs,
            forgotten=self.forgotten | frozenset(ids),
        )

    # -- views ------------------------------------------------------------------------
    def describe(self) -> dict:
        """JSON-ready summary: counts, mapping, sizes per slice, epochs per step."""
        return {
            "n_pool": self.n_pool,
            "n_teachers": self.n_teachers,
            "n_students": self.n_students,
            "teacher_slices": self.teacher_slices,
            "student_slices": self.student_slices,
            "teacher_samples": int(sum(s.size for slices in self.teacher_shards for s in slices)),
            "student_samples": int(sum(s.size for chunks in self.student_shards for c in chunks for s in c)),
            "forgotten": len(self.forgotten),
            "mapping": [list(group) for group in self.mapping],
            "teachers": [self._describe_teacher(i) for i in range(self.n_teachers)],
            "students": [self._describe_student(k) for k in range(self.n_students)],
        }

    def _describe_teacher(self, teacher_id: int) -> dict:
        slices = self.teacher_shards[teacher_id]
        return {"teacher_id": teacher_id, "slice_sizes": [int(s.size) for s in slices],
                "epochs": list(self.teacher_epochs), "passes": round(passes_over_shard(self.teacher_epochs), 3),
                "students": [k for k, group in enumerate(self.mapping) if teacher_id in group]}

    def _describe_student(self, student_id: int) -> dict:
        group = self.mapping[student_id]
        # who labels a chunk is labelling_teachers' answer alone (an emptied teacher drops out), so the
        # mapping picture, its tables and the CLI agree with the labels the engine computes
        chunks = [{"chunk_id": l_, "label_teachers": list(self.labelling_teachers("purge", student_id, l_)),
                   "slice_sizes": [int(s.size) for s in slices]}
                  for l_, slices in enumerate(self.student_shards[student_id])]
        return {"student_id": student_id, "teacher_ids": list(group), "chunks": chunks,
                "epochs": list(self.student_epochs[student_id]),
                "passes": round(passes_over_shard(self.student_epochs[student_id]), 3)}

    # -- storage ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "n_pool": self.n_pool,
            "teacher_shards": [[s.tolist() for s in slices] for slices in self.teacher_shards],
            "mapping": [list(g) for g in self.mapping],
            "student_shards": [[[s.tolist() for s in c] for c in chunks] for chunks in self.student_shards],
            "teacher_epochs": list(self.teacher_epochs),
            "student_epochs": [list(e) for e in self.student_epochs],
            "forgotten": sorted(self.forgotten),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        def arr(values) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return cls(
            n_pool=int(data["n_pool"]),
            teacher_shards=tuple(tuple(arr(s) for s in slices) for slices in data["teacher_shards"]),
            mapping=tuple(tuple(int(t) for t in g) for g in data["mapping"]),
            student_shards=tuple(tuple(tuple(arr(s) for s in c) for c in chunks)
                                 for chunks in data["student_shards"]),
            teacher_epochs=tuple(int(e) for e in data["teacher_epochs"]),
            student_epochs=tuple(tuple(int(e) for e in es) for es in data["student_epochs"]),
            forgotten=frozenset(int(i) for i in data["forgotten"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))

    def same_layout(self, other: Plan) -> bool:
        """True when both plans hold the same samples in the same places with the same epochs."""
        return self.to_dict() == other.to_dict()


# -- making a plan ---------------------------------------------------------------------
def make_mapping(n_teachers: int, n_students: int) -> tuple[tuple[int, ...], ...]:
    """Teachers in N_s contiguous groups; the first N_t mod N_s students get one extra (section 4.3)."""
    if not 1 <= n_students <= n_teachers:
        raise ValueError(f"n_students: got {n_students}, must be an integer in [1, n_teachers={n_teachers}]")
    sizes = [len(g) for g in np.array_split(np.arange(n_teachers), n_students)]
    starts = np.cumsum([0, *sizes])
    return tuple(tuple(range(int(starts[k]), int(starts[k + 1]))) for k in range(n_students))


def _split(ids: np.ndarray, parts: int) -> tuple[np.ndarray, ...]:
    """Contiguous near-equal parts (sizes differ by at most one, larger first), each sorted."""
    return tuple(np.sort(part).astype(np.int64) for part in np.array_split(ids, parts))


def _permutation(seed: int, role: str, n: int) -> np.ndarray:
    return np.random.default_rng(seed_for(seed, role)).permutation(n).astype(np.int64)


def _pools(config: PurgeConfig, n_pool: int) -> tuple[np.ndarray, np.ndarray]:
    """(D^T, D^S) as sample ids of the whole id space (section 4.1)."""
    n_teacher, n_student = config.pool_sizes(n_pool)
    student_order = _permutation(config.seed, "plan-student-data", n_pool)
    student_data = student_order[:n_student]
    if config.student_data == "disjoint":
        rest = student_order[n_student:]
        teacher_data = rest[_permutation(config.seed, "plan-teacher-data", rest.size)][:n_teacher]
    else:
        teacher_data = _permutation(config.seed, "plan-teacher-data", n_pool)[:n_teacher]
    return teacher_data, student_data


def _pool_of(bundle) -> tuple[int, np.ndarray | None]:
    """(size of the id space, the ids the data holds, or None when it holds every id)."""
    if isinstance(bundle, (int, np.integer)):
        return int(bundle), None
    held = None if getattr(bundle, "ids", None) is None else np.asarray(bundle.ids, dtype=np.int64)
    return int(getattr(bundle, "id_space", 0) or bundle.n_train), held


def make_plan(config: PurgeConfig, bundle) -> Plan:
    """The plan for a config over a train pool (a DatasetBundle, or the size of its id space as an int).

    Placement is a pure function of the config and each sample's stable id: seeded permutations of
    the dataset's whole id space are cut into shards, chunks and slices, and only then are the ids
    the data does not hold dropped. So the plan of a dataset built without some samples puts every
    other sample exactly where the full dataset's plan puts it, and lists the missing ids as
    forgotten: a from-scratch run on data that never held them is the reference verification uses.
    """
    n_pool, held = _pool_of(bundle)
    config.validate(n_pool=n_pool)
    teacher_data, student_data = _pools(config, n_pool)
    mapping = make_mapping(config.n_teachers, config.n_students)

    def cut(ids: np.ndarray, parts: int) -> Slices:
        return tuple(s if held is None else s[np.isin(s, held)] for s in _split(ids, parts))

    teacher_shards = tuple(cut(shard, config.teacher_slices) for shard in _split(teacher_data, config.n_teachers))
    student_shards = tuple(
        tuple(cut(chunk, config.student_slices) for chunk in _split(shard, len(group)))
        for shard, group in zip(_split(student_data, config.n_students), mapping, strict=True)
    )
    used = np.union1d(teacher_data, student_data)
    return Plan(
        n_pool=n_pool,
        teacher_shards=teacher_shards,
        mapping=mapping,
        student_shards=student_shards,
        teacher_epochs=sisa_epochs(config.teacher_slices, config.epochs),
        student_epochs=tuple(sisa_epochs(len(g) * config.student_slices, config.epochs) for g in mapping),
        forgotten=frozenset() if held is None else frozenset(np.setdiff1d(used, held).tolist()),
    )


# -- what a forget request must retrain -------------------------------------------------
@dataclass(frozen=True, eq=False)
class RetrainScope:
    """What a forget request must retrain (section 5). Steps are the first step to retrain: the
    constituent restarts from the checkpoint after step-1, or from its seeded init when 0."""

    sample_ids: tuple[int, ...]
    teachers: dict[int, int]  # teacher_id -> first step to retrain
    students: dict[str, dict[int, int]]  # method -> student_id -> first step to retrain
    label_slices: dict[str, tuple[tuple[int, int, int], ...]]  # method -> (student_id, chunk_id, slice_id) relabelled
    touched_slices: tuple[tuple[int, int, int], ...] = ()  # student slices that lost samples

    def to_dict(self) -> dict:
        return {
            "sample_ids": list(self.sample_ids),
            "teachers": {str(i): s for i, s in sorted(self.teachers.items())},
            "students": {m: {str(k): s for k, s in sorted(v.items())} for m, v in self.students.items()},
            "label_slices": {m: [list(c) for c in v] for m, v in self.label_slices.items()},
            "touched_slices": [list(c) for c in self.touched_slices],
        }


def _earliest(target: dict[int, int], constituent: int, step: int) -> None:
    target[constituent] = min(step, target.get(constituent, step))


def scope_for_changes(plan: Plan, teacher_steps: dict[int, int], student_steps: dict[int, int],
                      sample_ids: tuple[int, ...] = (), touched_slices=()) -> RetrainScope:
    """Scope from changed teachers (teacher_id -> first step retrained) and student-side removals
    (student_id -> first step whose data changed; touched_slices: the (student_id, chunk_id,
    slice_id)s that lost samples). Each constituent restarts once, from its earliest affected step.

    Soft labels are computed and cached per slice, so a slice that lost samples is relabelled under
    every method over its current samples, exactly as a from-scratch run on the reduced plan does."""
    r = plan.student_slices
    students: dict[str, dict[int, int]] = {m: dict() for m in METHODS}
    labels: dict[str, set[tuple[int, int, int]]] = {m: set(touched_slices) for m in METHODS}

    def chunk_slices(k: int, chunks) -> set[tuple[int, int, int]]:
        return {(k, c, j) for c in chunks for j in range(r)}

    for k, step in student_steps.items():
        for method in METHODS:
            _earliest(students[method], k, step)
    for k, group in enumerate(plan.mapping):
        positions = [p for p, t in enumerate(group) if t in teacher_steps]
        if positions:
            p = min(positions)  # chunks p.. are labelled by a changed teacher (incremental labels)
            _earliest(students["purge"], k, p * r)
            labels["purge"].update(chunk_slices(k, range(p, len(group))))
            _earliest(students["single_teacher"], k, p * r)
            labels["single_teacher"].update(chunk_slices(k, positions))  # chunk q labelled by teacher q alone
    if teacher_steps:  # every baseline label comes from the whole ensemble
        for k, group in enumerate(plan.mapping):
            students["baseline"][k] = 0
            labels["baseline"].update(chunk_slices(k, range(len(group))))
    return RetrainScope(
        sample_ids=tuple(sample_ids),
        teachers=dict(sorted(teacher_steps.items())),
        students={m: dict(sorted(v.items())) for m, v in students.items()},
        label_slices={m: tuple(sorted(v)) for m, v in labels.items()},
        touched_slices=tuple(sorted(touched_slices)),
    )


def retrain_scope(plan: Plan, sample_ids) -> RetrainScope:
    """What each method must retrain to forget `sample_ids` (section 5)."""
    ids = plan.check_request(sample_ids)
    teacher_steps: dict[int, int] = {}
    student_steps: dict[int, int] = {}
    touched: set[tuple[int, int, int]] = set()
    for sample_id in ids:
        where = plan.locate(sample_id)
        if where["teacher"] is not None:
            _earliest(teacher_steps, where["teacher"], where["teacher_slice"])
        if where["student"] is not None:
            _earliest(student_steps, where["student"], where["chunk"] * plan.student_slices + where["student_slice"])
            touched.add((where["student"], where["chunk"], where["student_slice"]))
    return scope_for_changes(plan, teacher_steps, student_steps, ids, touched)


def full_scope(plan: Plan) -> RetrainScope:
    """Everything from scratch: the cost of training a plan, or of a full retrain."""
    return scope_for_changes(plan, {i: 0 for i in range(plan.n_teachers)}, {k: 0 for k in range(plan.n_students)})


# -- predicted cost ----------------------------------------------------------------------
def teacher_sample_steps(plan: Plan, teacher_id: int, first_step: int) -> int:
    """Samples x epochs trained when teacher_id retrains from first_step to the end."""
    return sum(plan.teacher_step_data(teacher_id, m).size * plan.teacher_epochs[m]
               for m in range(first_step, plan.teacher_slices))


def student_sample_steps(plan: Plan, student_id: int, first_step: int) -> int:
    epochs = plan.student_epochs[student_id]
    return sum(plan.student_step_data(student_id, m).size * epochs[m]
               for m in range(first_step, plan.student_steps(student_id)))


def label_forwards(plan: Plan, method: str, slices, changed_teachers=None, touched=()) -> int:
    """Teacher forward passes (samples x teachers) to relabel the given (student_id, chunk_id, slice_id)s.

    Each teacher's softmax outputs are cached per slice (section 4.5), so a relabelled slice costs the
    forward passes of only its labelling teachers that changed (changed_teachers; None: all of them),
    or of all its labelling teachers when the slice itself lost samples (touched)."""
    touched = set(map(tuple, touched))

    def stale(k: int, c: int, j: int) -> int:
        teachers = plan.labelling_teachers(method, k, c)
        if changed_teachers is None or (k, c, j) in touched:
            return len(teachers)
        return sum(t in changed_teachers for t in teachers)

    return sum(plan.student_shards[k][c][j].size * stale(k, c, j) for k, c, j in slices)


def predicted_cost(plan: Plan, scope: RetrainScope) -> dict[str, dict[str, int]]:
    """Exact sample-steps (and label forward passes) each method will spend on `scope`.

    Counted on the plan the retrain trains on: `plan` without the scope's samples. Keys:
    "teacher" (teacher retraining, shared by every method and shown on its own), one key per
    student method, and "full_retrain" (every teacher and every PURGE student from scratch).
    """
    reduced = plan.without(scope.sample_ids) if scope.sample_ids else plan
    cost = {"teacher": {"sample_steps": sum(teacher_sample_steps(reduced, i, s) for i, s in scope.teachers.items()),
                        "label_forwards": 0, "constituents": len(scope.teachers)}}
    for method in METHODS:
        steps = scope.students[method]
        cost[method] = {
            "sample_steps": sum(student_sample_steps(reduced, k, s) for k, s in steps.items()),
            "label_forwards": label_forwards(reduced, method, scope.label_slices[method], set(scope.teachers),
                                             scope.touched_slices),
            "constituents": len(steps),
        }
    everything = full_scope(reduced)
    cost["full_retrain"] = {
        "sample_steps": sum(teacher_sample_steps(reduced, i, 0) for i in range(reduced.n_teachers))
        + sum(student_sample_steps(reduced, k, 0) for k in range(reduced.n_students)),
        "label_forwards": label_forwards(reduced, "purge", everything.label_slices["purge"]),
        "constituents": reduced.n_teachers + reduced.n_students,
    }
    return cost


def training_cost(plan: Plan) -> dict[str, dict[str, int]]:
    """Sample-steps of training the whole plan from scratch, per role and method."""
    return predicted_cost(plan, full_scope(plan))


def job_sample_steps(plan: Plan, methods=METHODS, scope: RetrainScope | None = None, *, teachers: bool = True,
                     full_retrain: bool = False) -> int:
    """The predicted total of a job, what its progress bar counts toward: the sample-steps of training
    the whole plan (scope None) or of serving `scope`, for the teachers (unless teachers=False: they
    are trained already), each method in `methods`, and the from-scratch reference when full_retrain.
    A job trains exactly this much (verify checks measured = predicted)."""
    cost = training_cost(plan) if scope is None else predicted_cost(plan, scope)
    roles = (*(("teacher",) if teachers else ()), *methods, *(("full_retrain",) if full_retrain else ()))
    return sum(cost[role]["sample_steps"] for role in roles)


# -- helpers ---------------------------------------------------------------------------------
def _as_id_tuple(sample_ids, n_pool: int) -> tuple[int, ...]:
    values = list(np.atleast_1d(np.asarray(sample_ids, dtype=object)).tolist()) if sample_ids is not None else []
    if not values:
        raise ValueError(f"sample_ids: got an empty request; name at least one sample id in [0, {n_pool - 1}]")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer))
           and not (isinstance(v, float) and v.is_integer())]
    if bad:
        raise ValueError(f"sample_ids: got {_preview(bad)}, must be whole numbers in [0, {n_pool - 1}]")
    ids = [int(v) for v in values]
    out_of_range = [i for i in ids if not 0 <= i < n_pool]
    if out_of_range:
        raise ValueError(f"sample_ids: got {_preview(out_of_range)}, must be in [0, {n_pool - 1}] "
                         "(ids of the train pool)")
    distinct = sorted(set(ids))
    if len(distinct) != len(ids):
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f"sample_ids: {_preview(twice)} given more than once; name each id in "
                         f"[0, {n_pool - 1}] once")
    return tuple(distinct)


def _preview(values, limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")
