"""Command line: `python -m purge_engine COMMAND ...`. A thin client over the engine.

Every config field has one flag, named in the paper's vocabulary, on every command that takes
a config. Every command that reports results has `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from purge_engine import theory
from purge_engine.advantage import advantage, request_side, why
from purge_engine.canaries import canary_ids
from purge_engine.config import AUTO_LANES, EXECUTORS, LANE_LIMIT, PurgeConfig, allowed_text, field_help
from purge_engine.events import Event, StepEvent
from purge_engine.files import CheckpointError
from purge_engine.plan import (
    METHODS,
    epoch_warnings,
    job_sample_steps,
    make_plan,
    predicted_cost,
    retrain_scope,
    training_cost,
)
from purge_engine.requests import parse_ids
from purge_engine.sources import DATASETS, catalog
from purge_engine.store import DEFAULT_RUNS_DIR, ENVIRONMENT_KEY, LOCK_TIMEOUT_S, list_runs
from purge_engine.vocabulary import constituent_label, step_label, title

# Flags whose names differ from the field: the paper says "teachers", not "n_teachers".
_FLAG_NAMES = {"n_teachers": "--teachers", "n_students": "--students"}
_TYPES = {"int": int, "float": float, "str": str, "path": str}  # metadata kind -> argparse type
MAX_CONFIG_BYTES = 1 << 20
MAX_WAIT_S = 86_400.0
MAX_TOP = 100_000
_REQUEST_ID = "a whole number, the id of a request in the run's ledger"


def flag_for(field_name: str) -> str:
    return _FLAG_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per PurgeConfig field; defaults stay in PurgeConfig (None here means 'not given')."""
    group = parser.add_argument_group("layout and training (defaults from PurgeConfig)")
    group.add_argument("--config", metavar="FILE", help="start from a config JSON file")
    for f in fields(PurgeConfig):
        kind = _TYPES[f.metadata["kind"]]
        choices = None if f.metadata.get("path_ok") else f.metadata.get("choices")  # a PATH is checked later
        group.add_argument(flag_for(f.name), dest=f.name, type=_flag_type(f.name, kind), default=None,
                           metavar=kind.__name__.upper(), choices=choices, help=flag_help(f.name))


def _flag_type(name: str, kind: type, allowed: str | None = None):
    """argparse's type for a flag: a value that is not a number is refused naming the field and its
    range (a config field's own, unless `allowed` says it)."""
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: got {text!r}, must be {allowed or allowed_text(name)}") from None

    parse.__name__ = kind.__name__
    return parse


def flag_help(name: str) -> str:
    """A config flag's help: the field's metadata help, what it may be, and its PurgeConfig default."""
    return f"{field_help(name)} Must be {allowed_text(name)}; default {getattr(PurgeConfig(), name)}."


def config_from_args(args: argparse.Namespace) -> PurgeConfig:
    base = PurgeConfig()
    if getattr(args, "config", None) is not None:
        base = read_config_file(args.config)
    given = {f.name: getattr(args, f.name) for f in fields(PurgeConfig) if getattr(args, f.name, None) is not None}
    if "dataset" in given:
        given["dataset"] = dataset_from_flag(given["dataset"])
    return base.replace(**given).validate()


def dataset_from_flag(value: str) -> str:
    """--dataset: a dataset's name, or the path of the user's own data (.npz, .csv, image folder), read and
    checked here (userdata.DatasetRefused says what is wrong) and named by its content. It is only
    registered in this process: `train` stores it once the whole config is valid, `plan` never does."""
    from purge_engine import userdata

    looks_like_path = os.path.exists(value) or os.sep in value or value.lower().endswith((".npz", ".csv"))
    if value in DATASETS or not looks_like_path:
        return value
    return userdata.register(userdata.read_user_dataset(value))


def read_config_file(path: str) -> PurgeConfig:
    """--config FILE: a JSON object of PurgeConfig fields (those left out keep their defaults)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ValueError(f"config: cannot read {path!r} ({err.strerror or err}); --config must name a JSON "
                         "file of PurgeConfig fields") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"config: {path!r} is over {MAX_CONFIG_BYTES:,} bytes; a config is a small JSON object")
    try:
        data = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        data = None  # refused below, as before
    except (ValueError, RecursionError) as err:
        raise ValueError(f"config: not valid JSON ({err}) (in {path})") from None
    if isinstance(data, dict):  # a run's config.json also says how it was last executed: not a field
        data.pop(ENVIRONMENT_KEY, None)
    try:
        return PurgeConfig.from_json(text.decode("utf-8")) if data is None else PurgeConfig.from_dict(data)
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"config: {path!r} is not a UTF-8 JSON object of PurgeConfig fields ({err})") from None
    except ValueError as err:
        raise ValueError(f"{err} (in {path})") from None


# -- commands ----------------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace) -> dict:
    config = config_from_args(args)
    plan = make_plan(config, DATASETS[config.dataset].n_train)
    report = {"config": config.to_dict(), "fingerprint": config.fingerprint(), **plan.describe(),
              "canaries": canary_ids(config, plan.n_pool).tolist(),
              "training_cost": training_cost(plan), "warnings": epoch_warnings(config)}
    if args.samples is not None:  # "" is a request that names no id: refused, not ignored
        scope = retrain_scope(plan, parse_ids(args.samples, plan.n_pool))
        report["scope"] = scope.to_dict()
        report["predicted"] = predicted_cost(plan, scope)
        report["advantage"] = {"side": request_side(plan, scope.sample_ids), "why": why(plan, scope.sample_ids),
                               "predicted": advantage(report["predicted"])}
    return report


def print_plan(report: dict) -> None:
    print(f"dataset {report['config']['dataset']}: {report['n_pool']} train samples; "
          f"{report['teacher_samples']} teacher samples, {report['student_samples']} student samples")
    print(f"{report['n_teachers']} teachers x {report['teacher_slices']} slices; "
          f"{report['n_students']} students, {report['student_slices']} slices per chunk")
    for teacher in report["teachers"]:
        print(f"  Teacher {teacher['teacher_id'] + 1}: slices {teacher['slice_sizes']}, "
              f"epochs per step {teacher['epochs']} ({teacher['passes']:.1f} passes over the shard)")
    for student in report["students"]:
        teachers = ", ".join(str(t + 1) for t in student["teacher_ids"])
        print(f"  Student {student['student_id'] + 1} <- Teachers {teachers}; epochs per step {student['epochs']} "
              f"({student['passes']:.1f} passes over the shard)")
        for chunk in student["chunks"]:
            labels = ("Teachers " + "+".join(str(t + 1) for t in chunk["label_teachers"]) if chunk["label_teachers"]
                      else "no teacher (uniform)")
            print(f"    chunk {chunk['chunk_id'] + 1}: labelled by {labels}, slices {chunk['slice_sizes']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    _print_cost("training cost (sample-steps)", report["training_cost"], "ensemble")
    if "scope" in report:
        scope = report["scope"]
        teachers = ", ".join(f"Teacher {int(i) + 1} from step {s + 1}" for i, s in scope["teachers"].items()) or "none"
        print(f"forget {scope['sample_ids']}: retrain {teachers}")
        for method, steps in scope["students"].items():
            shown = ", ".join(f"Student {int(k) + 1} from step {s + 1}" for k, s in steps.items()) or "none"
            print(f"  {title(method)}: {shown}")
        _print_cost("predicted cost of the request (sample-steps)", report["predicted"])
        print_advantage(report["advantage"])


def print_advantage(adv: dict) -> None:
    """The headline: baseline student ÷ PURGE students, and why (advantage.py)."""
    for key in ("predicted", "measured"):
        if adv.get(key) is not None:
            print(f"PURGE's advantage ({key}): the baseline student retrains {adv[key]:.2f}x the sample-steps "
                  "PURGE's students do (teacher retraining is the same for both)")
    if adv.get("why"):
        print(adv["why"])


def _print_cost(heading: str, cost: dict, form: str = "retraining") -> None:
    print(heading + ":")
    for key, value in cost.items():
        print(f"  {title(key, form):<26} {value['sample_steps']:>12,} sample-steps  "
              f"{value['label_forwards']:>10,} label passes")


def cmd_theory(args: argparse.Namespace) -> dict:
    theory.check_layout(args.teachers, args.students, args.student_slices, args.requests)
    students = [args.students] if args.students else theory.divisors(args.teachers)
    rows = [theory.theory_row(args.teachers, n, args.student_slices).to_dict() for n in students]
    if args.requests:
        for row in rows:
            row["batched_speedup"] = theory.batched_teacher_side_speedup(
                args.teachers, row["n_students"], args.student_slices, args.requests)
    return rows[0] if args.students else {"rows": rows}


def print_theory(report: dict) -> None:
    print(f"{'N_t':>4} {'N_s':>4} {'r':>3} {'c':>6} {'teacher-side':>13} {'student-side':>13}")
    for row in report.get("rows", [report]):
        print(f"{row['n_teachers']:>4} {row['n_students']:>4} {row['student_slices']:>3} "
              f"{row['teachers_per_student']:>6.2f} {row['teacher_side_speedup']:>12.2f}x "
              f"{row['student_side_speedup']:>12.2f}x")


class ProgressBar:
    """Prints one line per finished step to stderr, with a bar over the job's predicted sample-steps
    (plan.job_sample_steps, as the dashboard's bars). count_reused: a reused step counts as done
    (training, whose total is the whole plan); a forget request's total is only what it retrains."""

    def __init__(self, total: int, count_reused: bool = False, stream=sys.stderr, width: int = 30):
        from purge_engine.eta import LiveEta

        self.total, self.count_reused, self.done, self.stream, self.width = total, count_reused, 0, stream, width
        self.eta = LiveEta(total)  # from the steps this job trains itself (reused ones cost no time)

    def __call__(self, event: Event) -> None:
        if not isinstance(event, StepEvent) or event.kind not in ("reused", "trained"):
            return
        if event.kind == "trained" or self.count_reused:
            self.done += event.samples * event.epochs
        if event.kind == "trained":
            self.eta.add(event.samples * event.epochs)
        elif self.count_reused:
            self.eta.total -= event.samples * event.epochs
        filled = min(self.width, self.width * self.done // max(self.total, 1))
        what = "reused" if event.kind == "reused" else f"{event.samples} samples x {event.epochs} ep, " \
                                                         f"{event.seconds:.2f}s, loss {event.loss or 0:.3f}"
        left = self.eta.seconds_left()
        print(f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done:,}/{self.total:,} sample-steps "
              f"{constituent_label(event.role, event.constituent)} {step_label(event.step)}/{event.n_steps}: {what}"
              + ("" if left is None else f"; ~{left:.0f} s left"), file=self.stream)


def _methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods: got {text!r}, must be a comma list from {', '.join(METHODS)}")
    return methods


def add_wait_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=_flag_type("wait", float, f"a number of seconds in [0, {MAX_WAIT_S:g}]"),
                        default=LOCK_TIMEOUT_S, metavar="SECONDS",
                        help="how long to wait while another process trains, forgets or verifies on the run "
                             f"(default {LOCK_TIMEOUT_S:g})")


def add_executor_flags(parser: argparse.ArgumentParser, switch: bool = False) -> None:
    add_wait_flag(parser)
    group = parser.add_argument_group("execution (not part of the run's identity)")
    group.add_argument("--executor", choices=EXECUTORS, default=None,
                       help="default (or auto): the run's own path once trained, else lanes on a GPU and the loop "
                            "on a CPU; local: chains one after another in this process (the loop); ray: one Ray "
                            "task per chain (the loop, or lanes with --lanes); lanes: W chains at once as lanes of "
                            "one batched model (the GPU path). A trained run is served only on its own path")
    if switch:
        group.add_argument("--switch-path", action="store_true",
                           help="retrain the whole run on the --executor's path (its steps were trained on another; "
                                "one run's steps must all share one path)")
    group.add_argument("--lanes", type=_flag_type("lanes", int, f"an integer from 1 to {LANE_LIMIT}"), default=None,
                       help=f"lanes per group for --executor lanes (1 to {LANE_LIMIT}; default: the run's own W "
                            f"when it was trained in lanes, else {AUTO_LANES['cpu']} on a CPU, {AUTO_LANES['cuda']} "
                            "on a GPU), or with --executor ray: each Ray task trains a block of W chains as lanes "
                            "(several lane groups per GPU); "
                            "part of the execution path: retrain and verify with the same W")
    group.add_argument("--ray-address", default=None,
                       help="join an existing Ray cluster (e.g. auto or HOST:6379); default: start a local one")
    group.add_argument("--workers", type=_flag_type("workers", int, "an integer of at least 1"), default=None,
                       help="CPUs of the local Ray cluster (default: every core)")


def _executor(args: argparse.Namespace):
    """The executor the flags ask for (None: the run's own, execution.choose), connected before anything
    is stored (Ray is imported only for --executor ray), so an unreachable cluster leaves no trace."""
    from purge_engine.execution import make_executor

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers: got {args.workers}, must be an integer of at least 1")
    if args.lanes is not None and args.executor not in ("lanes", "ray"):
        raise ValueError(f"lanes: got {args.lanes}, but --lanes applies to --executor lanes or ray only "
                         f"(the executor is {args.executor or 'left to the run'})")
    executor = make_executor(args.executor, args.ray_address, args.workers, args.lanes)
    if executor is not None:
        executor.connect()
    return executor


def _waiting(exp, args: argparse.Namespace):
    """The run set to wait up to --wait seconds for another writer, saying so on stderr."""
    wait = getattr(args, "wait", LOCK_TIMEOUT_S)
    if not 0 <= wait <= MAX_WAIT_S:
        raise ValueError(f"wait: got {wait:g}, must be a number of seconds in [0, {MAX_WAIT_S:g}]")
    exp.lock_timeout = wait
    exp.on_wait = lambda sentence: print(sentence, file=sys.stderr)
    return exp


def _run_dir(args: argparse.Namespace, config: PurgeConfig | None = None) -> str:
    if args.run:
        return args.run
    if config is not None:
        return str(DEFAULT_RUNS_DIR / f"{config.dataset.replace(':', '-')}-{config.fingerprint()[:8]}")
    runs = list_runs()
    if not runs:
        raise ValueError(f"run: no --run given and no run under {DEFAULT_RUNS_DIR}/; train one first")
    return str(runs[0])


def cmd_train(args: argparse.Namespace) -> dict:
    from purge_engine.experiment import Experiment  # deferred: loads torch
    from purge_engine.userdata import store_registered

    config = config_from_args(args)
    methods = _methods(args.methods)
    executor = _executor(args)
    store_registered(config.dataset)  # a user's file: copied into the datasets folder only now, all checks passed
    exp = _waiting(Experiment.create(config, _run_dir(args, config), download=args.download, executor=executor,
                                     switch=args.switch_path), args)
    progress = None if args.json else ProgressBar(job_sample_steps(exp.plan, methods), count_reused=True)
    costs = exp.train(on_event=progress, methods=methods)
    return {"run": str(exp.store.root), "fingerprint": exp.config.fingerprint(), "device": str(exp.device),
            "cost": {role: cost.to_dict() for role, cost in costs.items()}, **exp.evaluate()}


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from purge_engine.experiment import Experiment

    exp = _waiting(Experiment.open(_run_dir(args)), args)
    return {"run": str(exp.store.root), **exp.evaluate()}


def print_accuracy(report: dict) -> None:
    if "cost" in report:
        for role, cost in report["cost"].items():
            print(f"{title(role):<26} trained {cost['sample_steps']:>10,} sample-steps in {cost['seconds']:7.2f} s")
    print(f"test accuracy on {report['samples']} samples ({report['run']}):")
    for role, value in report["accuracy"].items():
        singles = ", ".join(_number(a) for a in report["constituents"][role])
        print(f"  {title(role):<26} {_number(value, '.4f')}   constituents: {singles}")


def cmd_forget(args: argparse.Namespace) -> dict:
    from purge_engine.experiment import Experiment

    exp = _waiting(Experiment.open(_run_dir(args), finish_pending=False, executor=_executor(args)), args)
    exp.finish_pending()
    if args.affected_only and not args.verify:
        raise ValueError("affected_only: --affected-only shapes the verification, so it needs --verify")
    methods = _methods(args.methods)
    ids = parse_ids(args.samples, exp.plan.n_pool)
    total = job_sample_steps(exp.plan, methods, retrain_scope(exp.plan, ids), full_retrain=args.full_retrain)
    report = exp.forget(ids, methods=methods, full_retrain=args.full_retrain,
                        on_event=None if args.json else ProgressBar(total), evidence=not args.no_evidence)
    if args.verify:
        report.verification = {k: v for k, v in exp.verify(report.request_id, affected_only=args.affected_only).items()
                               if k != "details"}
    return {"run": str(exp.store.root), **report.to_dict()}


def print_forget(report: dict) -> None:
    print(f"forget request {report['request_id']}: samples {report['sample_ids']}"
          + (" (finished after a crash)" if report.get("resumed") else ""))
    for role, steps in report["retrained"].items():
        shown = ", ".join(f"{int(c) + 1} from step {s + 1}" for c, s in steps.items())
        print(f"  {title(role, 'short'):<26} retrained {shown}; untouched {[c + 1 for c in report['reused'][role]]}")
    print(f"{'':<26} {'sample-steps':>12} {'predicted':>10} {'label passes':>13} {'seconds':>8}")
    for role, cost in report["cost"].items():
        print(f"{title(role, 'retraining'):<26} {cost['sample_steps']:>12,} "
              f"{report['predicted'][role]['sample_steps']:>10,} {cost['label_forwards']:>13,} {cost['seconds']:>8.2f}")
    if report.get("full_retrain"):
        full = report["full_retrain"]
        print(f"{title('full_retrain'):<26} {full['sample_steps']:>12,} "
              f"{report['predicted']['full_retrain']['sample_steps']:>10,} {full['label_forwards']:>13,} "
              f"{full['seconds']:>8.2f}  identical to the unlearned run: {full['identical_to_unlearned']}")
    print("test accuracy before -> after:")
    for role, before in report["accuracy"]["before"].items():
        after = report["accuracy"]["after"][role]
        print(f"  {title(role):<26} {_number(before['test'], '.4f')} -> {_number(after['test'], '.4f')}")
    print_advantage(report.get("advantage") or {})
    print_membership(report["membership"])
    if report.get("verification"):
        v = report["verification"]
        print(f"verification: exact={v['exact']} ({v['parameters_compared']:,} parameters of "
              f"{v['constituents_compared']} constituents, max |diff| {v['max_abs_diff']}): {v['reason']}")
        print(f"  reference: {v['reference']}")
        print(f"  forgotten absent: {v['forgotten_absent']}; work equals prediction: {v['cost_matches_prediction']}")


def print_membership(membership: dict) -> None:
    """AUC [95 % interval] and the forgotten samples' mean loss percentile among test losses, before -> after."""
    if not membership.get("before"):
        return  # a request served with score=False
    print("membership check (an illustrative loss-threshold attack, not a proof of forgetting; AUC 0.5 = chance):")
    for role, before in membership["before"].items():
        after = membership["after"].get(role, {})
        percentiles = [_number(check.get("forgotten_percentile"), ".0f") for check in (before, after)]
        print(f"  {title(role):<26} AUC {_auc_text(before)} -> {_auc_text(after)}; forgotten at percentile "
              f"{percentiles[0]} -> {percentiles[1]} of test losses")


def _auc_text(check: dict) -> str:
    return f"{_number(check.get('auc'))} [{_number(check.get('auc_low'))}, {_number(check.get('auc_high'))}]"


def _number(value, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def cmd_verify(args: argparse.Namespace) -> dict:
    from purge_engine.experiment import Experiment

    exp = _waiting(Experiment.open(_run_dir(args), finish_pending=False, executor=_executor(args)), args)
    exp.finish_pending()
    result = exp.verify(args.request, affected_only=args.affected_only)
    summary = {k: v for k, v in result.items() if k != "details"}
    return {"run": str(exp.store.root), "request_id": exp.latest_request(), **result, "verification": summary}


def print_verify(report: dict) -> None:
    print(f"exact={report['exact']}: {report['reason']}")
    print(f"  reference: {report['reference']}")
    print(f"  forgotten samples absent from every slice and file: {report['forgotten_absent']}; "
          f"measured work equals predicted: {report['cost_matches_prediction']}")
    for row in report["details"]:
        print(f"  {constituent_label(row['role'], row['constituent'])}: equal={row['equal']} "
              f"max |diff| {row['max_abs_diff']} hash {row['hash']} vs {row['reference_hash']}")


def cmd_audit(args: argparse.Namespace) -> dict:
    from purge_engine.experiment import Experiment

    if not 0 <= args.top <= MAX_TOP:
        raise ValueError(f"top: got {args.top}, must be an integer in [0, {MAX_TOP}]")
    exp = _waiting(Experiment.open(_run_dir(args), finish_pending=False), args)
    return {"run": str(exp.store.root), **exp.audit(args.request, top=args.top)}


def _p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def print_audit(report: dict) -> None:
    print(f"request {report['request_id']}: {len(report['samples'])} sample(s) {report['samples']}")
    if report.get("note"):
        print(f"  {report['note']}")
    print("  membership p-values (small: looks like a member; references: constituents that never saw it)")
    for row in report["membership"]:
        print(f"    sample {row['sample_id']:>5} {constituent_label(row['role'], row['constituent']):<32} "
              f"refs {row['references']:>2}  before {_p(row['p_before']):>8}  after {_p(row['p_after']):>8}  "
              f"reference {_p(row['p_reference']):>8}")
    for role, rates in report["canary"].items():
        shown = ", ".join(f"{c}: {_p(r['before'])}->{_p(r['after'])}" for c, r in rates.items())
        print(f"  canary rate, {title(role)}: {shown}")
    if report["contrast"]:
        print(f"  contrast: {report['contrast']['method']}, budget {report['contrast']['budget_sample_steps']}")
    if report["most_memorised"]:
        print("  most memorised now: " + ", ".join(str(r["sample_id"]) for r in report["most_memorised"]))


def cmd_ledger(args: argparse.Namespace) -> dict:
    from purge_engine.store import Ledger, RunStore

    store = RunStore(_run_dir(args))
    store.check_is_run()
    ledger = Ledger(store.ledger_path)
    ok, detail = ledger.verify_chain()
    requests = sorted({e["request_id"] for e in ledger.entries()})
    return {"run": str(store.root), "chain_valid": ok, "chain_detail": detail,
            "requests": [_ledger_row(ledger.record(r)) for r in requests]}


def _ledger_row(record: dict) -> dict:
    verification = record.get("exact")
    return {"request_id": record["request_id"], "status": record["status"], "time": record.get("started_at"),
            "sample_ids": record["sample_ids"], "methods": record["methods"],
            "cost": record.get("cost", {}), "predicted": record["predicted"],
            "verified": verification, "resumed": record.get("resumed", False)}


def print_ledger(report: dict) -> None:
    print(f"{report['run']}: hash chain {'valid' if report['chain_valid'] else 'BROKEN'} ({report['chain_detail']})")
    for row in report["requests"]:
        purge = row["cost"].get("purge", {}).get("sample_steps", "-")
        print(f"  #{row['request_id']} {row['time']} {row['status']:<8} samples {row['sample_ids']} "
              f"purge sample-steps {purge} verified {row['verified']}")


def cmd_certificate(args: argparse.Namespace) -> dict:
    from purge_engine.store import Ledger, RunStore

    store = RunStore(_run_dir(args))
    store.check_is_run()
    return Ledger(store.ledger_path).certificate(args.request)


def cmd_check(args: argparse.Namespace) -> dict:
    from purge_engine.check import check_run

    wait = args.wait
    if not 0 <= wait <= MAX_WAIT_S:
        raise ValueError(f"wait: got {wait:g}, must be a number of seconds in [0, {MAX_WAIT_S:g}]")
    report = check_run(_run_dir(args), repair=args.repair, timeout=wait,
                       on_wait=lambda sentence: print(sentence, file=sys.stderr))
    args.exit_status = 0 if report["run_whole"] else 1  # a damaged run is a failed check
    return report


def print_check(report: dict) -> None:
    print(f"{report['run']}: {len(report['damaged'])} damaged" + (":" if report["damaged"] else ""))
    for row in report["damaged"]:
        print(f"  {row['path']}: {row['problem']}")
    for row in report["repaired"]:
        hashes = (f" (parameter hash {row['param_hash']}, recorded {row['recorded_hash']})"
                  if "param_hash" in row else "")
        print(f"  repaired {row['path']}: {row['action']}{hashes}: {'proved' if row['proved'] else 'NOT proved'}")
    for row in report["unrepairable"]:
        print(f"  cannot repair {row['path']}: {row['problem']}")
    for note in report["notes"]:
        print(f"  note: {note}")
    if report["repaired"]:
        print(f"every rebuilt file equals its recorded hash: {report['proved']}")
    print("the run is whole" if report["run_whole"] else
          "the run is damaged" + ("" if report["repaired"] else
                                  f"; `python -m purge_engine check --run {report['run']} --repair` rebuilds it"))


def cmd_datasets(args: argparse.Namespace) -> dict:
    return {"data_root": args.data_root, "datasets": catalog(args.data_root)}


def print_datasets(report: dict) -> None:
    print(f"{'dataset':<21} {'here':<4} {'train':>7} {'test':>7} {'input':<18} {'classes':>7}  "
          f"{'teacher / student model':<24} licence")
    for row in report["datasets"]:
        spec = DATASETS[row["name"]]
        models = row["teacher_model"] if row["teacher_model"] == row["student_model"] else \
            f"{row['teacher_model']} / {row['student_model']}"
        print(f"{row['name']:<21} {'yes' if row['available'] else 'no':<4} {row['n_train']:>7,} {row['n_test']:>7,} "
              f"{spec.shape_text:<18} {row['n_classes']:>7}  {models:<24} {row['licence']}")
    for row in report["datasets"]:
        where = f"found at {row['found_at']}" if row["available"] else row["how_to_get"]
        print(f"  {row['name']}: from {' or '.join(row['sources'])}; {where}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m purge_engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="print the partition plan and predicted costs")
    add_config_flags(plan)
    plan.add_argument("--samples", help="also show the scope and predicted cost of forgetting these ids (3,17,40-45)")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(run_command=cmd_plan, show=print_plan)

    train = commands.add_parser("train", help="train teachers and student methods (resumes where it stopped)")
    add_config_flags(train)
    train.add_argument("--run", help=f"run directory (default {DEFAULT_RUNS_DIR}/<dataset>-<fingerprint>)")
    train.add_argument("--methods", default=",".join(METHODS), help="student methods to train")
    train.add_argument("--download", action="store_true", help="download a torchvision dataset into --data-root")
    train.add_argument("--json", action="store_true", help="machine-readable output")
    add_executor_flags(train, switch=True)
    train.set_defaults(run_command=cmd_train, show=print_accuracy)

    evaluate = commands.add_parser("evaluate", help="test accuracy of every ensemble and constituent")
    evaluate.add_argument("--run", help="run directory (default: the newest under runs/)")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    add_wait_flag(evaluate)
    evaluate.set_defaults(run_command=cmd_evaluate, show=print_accuracy)

    forget = commands.add_parser("forget", help="serve a forget request: retrain only what the samples touched")
    forget.add_argument("--run", help="run directory (default: the newest under runs/)")
    forget.add_argument("--samples", required=True, help="sample ids of the train pool: 3,17,42 or 10-14")
    forget.add_argument("--methods", default=",".join(METHODS), help="student methods to keep up to date")
    forget.add_argument("--verify", action="store_true", help="then prove the result equals training from scratch")
    forget.add_argument("--affected-only", action="store_true",
                        help="verify by retraining only the affected constituents in the reference (faster)")
    add_executor_flags(forget)
    forget.add_argument("--full-retrain", action="store_true", help="also retrain everything from scratch, for cost")
    forget.add_argument("--no-evidence", action="store_true",
                        help="leave out the evidence of forgetting (the membership test, canary rates and the "
                             "approximate contrast, which costs about what PURGE's retraining does); `audit` then "
                             "has nothing to report for this request")
    forget.add_argument("--json", action="store_true", help="machine-readable output")
    forget.set_defaults(run_command=cmd_forget, show=print_forget)

    verify = commands.add_parser("verify", help="compare the latest request's result with a from-scratch run")
    verify.add_argument("--run", help="run directory (default: the newest under runs/)")
    verify.add_argument("--request", type=_flag_type("request", int, _REQUEST_ID), default=None,
                        help="request id (default: the latest)")
    verify.add_argument("--affected-only", action="store_true",
                        help="retrain only the affected constituents in the reference (faster)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    add_executor_flags(verify)
    verify.set_defaults(run_command=cmd_verify, show=print_verify)
    _add_record_commands(commands)

    datasets = commands.add_parser("datasets", help="every dataset: where it comes from, licence, whether it is "
                                   "here, sizes, default models")
    datasets.add_argument("--data-root", default=PurgeConfig().data_root,
                          help="folder searched for torchvision files (as --data-root of train)")
    datasets.add_argument("--json", action="store_true", help="machine-readable output")
    datasets.set_defaults(run_command=cmd_datasets, show=print_datasets)
    return parser


def _add_record_commands(commands) -> None:
    """The commands that read a run's records or pure arithmetic: ledger, certificate, theory."""
    audit = commands.add_parser("audit", help="the evidence that a request's samples were forgotten: per-sample "
                                "membership p-values before, after and on the from-scratch reference, canary "
                                "rates, exact against approximate unlearning")
    audit.add_argument("--run", help="run directory (default: the newest under runs/)")
    audit.add_argument("--request", type=_flag_type("request", int, _REQUEST_ID), default=None,
                       help="request id (default: the latest)")
    audit.add_argument("--top", type=_flag_type("top", int, f"an integer in [0, {MAX_TOP}]"), default=10,
                       help="how many of the most memorised samples to list (default 10)")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(run_command=cmd_audit, show=print_audit)

    ledger = commands.add_parser("ledger", help="the run's forget requests and whether the hash chain holds")
    ledger.add_argument("--run", help="run directory (default: the newest under runs/)")
    ledger.add_argument("--json", action="store_true", help="machine-readable output")
    ledger.set_defaults(run_command=cmd_ledger, show=print_ledger)

    certificate = commands.add_parser("certificate", help="a request's ledger record as a JSON certificate")
    certificate.add_argument("--run", help="run directory (default: the newest under runs/)")
    certificate.add_argument("--request", type=_flag_type("request", int, _REQUEST_ID), required=True,
                             help="request id")
    certificate.add_argument("--json", action="store_true", default=True, help=argparse.SUPPRESS)
    certificate.set_defaults(run_command=cmd_certificate, show=None)

    check = commands.add_parser("check", help="list missing, corrupted or inconsistent files of a run; --repair "
                                "rebuilds them and proves each equals its recorded hash")
    check.add_argument("--run", help="run directory (default: the newest under runs/)")
    check.add_argument("--repair", action="store_true",
                       help="rebuild exactly the damaged steps (and what depends on them), under the writer lock")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    add_wait_flag(check)
    check.set_defaults(run_command=cmd_check, show=print_check)

    th = commands.add_parser("theory", help="closed-form speed-ups of PURGE over the baseline student")
    th.add_argument("--teachers", type=_flag_type("n_teachers", int), default=PurgeConfig().n_teachers, help="N_t")
    th.add_argument("--students", type=_flag_type("n_students", int, "an integer in [1, n_teachers]"), default=None,
                    help="N_s (default: every divisor of N_t)")
    th.add_argument("--student-slices", type=_flag_type("student_slices", int), default=1, help="r, slices per chunk")
    th.add_argument("--requests", type=_flag_type("requests", int, f"an integer in [0, {theory.MAX_REQUESTS}]"),
                    default=0, help="also the speed-up for K requests served as one batch")
    th.add_argument("--json", action="store_true", help="machine-readable output")
    th.set_defaults(run_command=cmd_theory, show=print_theory)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = args.run_command(args)
    except (ValueError, OSError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        args.show(report)
    return getattr(args, "exit_status", 0)


if __name__ == "__main__":
    sys.exit(main())
