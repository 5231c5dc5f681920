"""Command line: `python -m purge_engine COMMAND ...`. A thin client over the engine.

Every config field has one flag, named in the paper's vocabulary, on every command that takes
a config. Every command that reports results has `--json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import fields

from purge_engine import theory
from purge_engine.canaries import canary_ids
from purge_engine.cli_text import (
    ProgressBar,
    print_accuracy,
    print_audit,
    print_check,
    print_datasets,
    print_forget,
    print_ledger,
    print_plan,
    print_theory,
    print_verify,
)
from purge_engine.config import AUTO_LANES, EXECUTORS, LANE_LIMIT, MAX_TOP, PurgeConfig, allowed_text, field_help
from purge_engine.datasets import userdata
from purge_engine.datasets.sources import DATASETS, catalog
from purge_engine.datasets.userdata import store_registered
from purge_engine.events import ignore
from purge_engine.plan import (
    METHODS,
    epoch_warnings,
    make_plan,
    training_cost,
)
from purge_engine.request_plan import plan_request
from purge_engine.requests import parse_ids
from purge_engine.rundir.files import CheckpointError
from purge_engine.rundir.ledger import Ledger
from purge_engine.rundir.lock import LOCK_TIMEOUT_S
from purge_engine.rundir.store import DEFAULT_RUNS_DIR, ENVIRONMENT_KEY, RunStore, list_runs

# Flags whose names differ from the field: the paper says "teachers", not "n_teachers".
_FLAG_NAMES = {"n_teachers": "--teachers", "n_students": "--students"}
_TYPES = {"int": int, "float": float, "str": str, "path": str}  # metadata kind -> argparse type
MAX_CONFIG_BYTES = 1 << 20
MAX_WAIT_S = 86_400.0
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
        request = plan_request(plan, parse_ids(args.samples, plan.n_pool))
        report.update(scope=request.scope.to_dict(), predicted=request.predicted, advantage=request.advantage())
    return report


def cmd_theory(args: argparse.Namespace) -> dict:
    theory.check_layout(args.teachers, args.students, args.student_slices, args.requests)
    students = [args.students] if args.students else theory.divisors(args.teachers)
    rows = [theory.theory_row(args.teachers, n, args.student_slices).to_dict() for n in students]
    if args.requests:
        for row in rows:
            row["batched_speedup"] = theory.batched_teacher_side_speedup(
                args.teachers, row["n_students"], args.student_slices, args.requests)
    return rows[0] if args.students else {"rows": rows}


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


def _choices(args: argparse.Namespace):
    """recipes.Choices from the flags: the executor asked for (None: the run's own, execution.choose;
    Ray is imported only for --executor ray) and how long to wait for another writer, saying so on stderr."""
    from purge_engine.execution.choice import make_executor
    from purge_engine.recipes import Choices

    wait = getattr(args, "wait", LOCK_TIMEOUT_S)
    if not 0 <= wait <= MAX_WAIT_S:
        raise ValueError(f"wait: got {wait:g}, must be a number of seconds in [0, {MAX_WAIT_S:g}]")
    executor = None
    if hasattr(args, "executor"):  # train, forget and verify take executor flags
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"workers: got {args.workers}, must be an integer of at least 1")
        if args.lanes is not None and args.executor not in ("lanes", "ray"):
            raise ValueError(f"lanes: got {args.lanes}, but --lanes applies to --executor lanes or ray only "
                             f"(the executor is {args.executor or 'left to the run'})")
        executor = make_executor(args.executor, args.ray_address, args.workers, args.lanes)
    return Choices(executor, getattr(args, "switch_path", False), wait,
                   lambda sentence: print(sentence, file=sys.stderr))


def _bar(args: argparse.Namespace):
    """The job's progress bar on stderr, or none with --json (stdout is the report alone)."""
    return contextlib.nullcontext(None) if args.json else ProgressBar()


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
    from purge_engine import recipes  # deferred: loads torch

    config, methods, choices = config_from_args(args), _methods(args.methods), _choices(args)
    store_registered(config.dataset)  # a user's file: copied into the datasets folder only now, all checks passed
    with _bar(args) as bar:
        return recipes.train(_run_dir(args, config), config, methods, download=args.download, choices=choices,
                             on_event=bar or ignore)


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from purge_engine import recipes

    exp = recipes.open_run(_run_dir(args), _choices(args))
    exp.finish_pending()
    return {"run": str(exp.store.root), **exp.evaluate()}


def cmd_forget(args: argparse.Namespace) -> dict:
    from purge_engine import recipes

    choices, methods = _choices(args), _methods(args.methods)
    with _bar(args) as bar:
        return recipes.forget(_run_dir(args), args.samples, methods, full_retrain=args.full_retrain, verify=args.verify,
                              affected_only=args.affected_only, evidence=not args.no_evidence, choices=choices,
                              on_event=bar or ignore)


def cmd_verify(args: argparse.Namespace) -> dict:
    from purge_engine import recipes

    with _bar(args) as bar:
        return recipes.verify(_run_dir(args), args.request, affected_only=args.affected_only, choices=_choices(args),
                              on_event=bar or ignore)


def cmd_audit(args: argparse.Namespace) -> dict:
    from purge_engine import recipes

    return recipes.audit(_run_dir(args), args.request, top=args.top, choices=_choices(args))


def cmd_ledger(args: argparse.Namespace) -> dict:
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


def cmd_certificate(args: argparse.Namespace) -> dict:
    store = RunStore(_run_dir(args))
    store.check_is_run()
    return Ledger(store.ledger_path).certificate(args.request)


def cmd_check(args: argparse.Namespace) -> dict:
    from purge_engine import recipes

    report = recipes.repair(_run_dir(args), fix=args.repair, choices=_choices(args))
    args.exit_status = 0 if report["run_whole"] else 1  # a damaged run is a failed check
    return report


def cmd_datasets(args: argparse.Namespace) -> dict:
    return {"data_root": args.data_root, "datasets": catalog(args.data_root)}


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
