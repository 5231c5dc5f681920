"""Bad input, as a hostile user types it (issue 17): every case is refused with a message naming the
field and what it may be, never a traceback, and a run directory it touches stays byte-identical.

Five groups, one parametrized test each: CLI flags and files without a run (torch-free commands);
CLI and API requests on a trained run that has served one request; damaged run directories (ledger,
config, plan); pure API calls; the dashboard's run names and layout links. One tiny run is trained
once per session and copied where a case damages it.
"""

import hashlib
import json
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dashboard.setup.share import layout_from_query
from purge_engine import theory
from purge_engine.cli import main
from purge_engine.config import PurgeConfig
from purge_engine.datasets.readers import DatasetUnavailable, load_dataset
from purge_engine.experiment import Experiment
from purge_engine.plan import make_plan
from purge_engine.requests import parse_ids
from purge_engine.rundir.store import check_run_name, run_dir_under
from tests.conftest import copy_of

POOL = "[0, 1403]"  # digits: 1,404 train samples
REPO = Path(__file__).resolve().parents[1]


# -- helpers --------------------------------------------------------------------------------------
def tree(root: Path) -> dict[str, str]:
    """Every file (hashed) and folder under root, the lock file included: byte-identical means equal."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def cli(capsys, argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of the CLI's main, argparse's own exits included."""
    try:
        rc = main(argv)
    except SystemExit as stop:
        rc = stop.code
    return rc, capsys.readouterr().err


def assert_refused(rc: int, err: str, fragments: tuple[str, ...]) -> None:
    assert rc == 2, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"


@pytest.fixture(scope="session")
def served(train_once, tiny_config, tmp_path_factory) -> tuple[Path, int]:
    """(run directory, the sample it forgot): the tiny run, trained, after one forget request."""
    exp = copy_of(train_once(tiny_config), tmp_path_factory.mktemp("bad-input") / "run")
    forgotten = int(exp.plan.teacher_shards[0][0][0])
    exp.forget([forgotten], score=False)
    return exp.store.root, forgotten


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a command that fell back to runs/ would write here, not in the repo


# -- 1. CLI flags and files, no run directory ---------------------------------------------------
INT_FLAGS = [  # flag, field, allowed, (too low, too high)
    ("--teachers", "n_teachers", "[1, 100000]", ("0", "100001")),
    ("--teacher-slices", "teacher_slices", "[1, 10000]", ("0", "10001")),
    ("--student-slices", "student_slices", "[1, 10000]", ("-3", "10001")),
    ("--epochs", "epochs", "[1, 10000]", ("0", "99999")),
    ("--batch-size", "batch_size", "[1, 1000000]", ("0", "1000001")),
    ("--seed", "seed", f"[0, {2**63 - 1}]", ("-1", str(2**63))),
    ("--threads", "threads", "[0, 256]", ("-1", "257")),
]
FLOAT_FLAGS = [  # flag, field, allowed, out-of-range values
    ("--teacher-fraction", "teacher_fraction", "(0, 1.0]", ("0", "1.5", "nan")),
    ("--student-fraction", "student_fraction", "(0, 1.0]", ("-0.2", "2", "inf")),
    ("--teacher-lr", "teacher_lr", "(0, 10.0]", ("0", "11", "nan")),
    ("--student-lr", "student_lr", "(0, 10.0]", ("-0.001", "1e9")),
    ("--temperature", "temperature", "(0, 100.0]", ("0", "101")),
    ("--alpha", "alpha", "[0.0, 1.0]", ("-0.1", "1.1", "nan")),
]
CHOICE_FLAGS = ["--dataset", "--student-data", "--teacher-model", "--student-model", "--aggregation", "--device",
                "--memory-format"]


def _flag_cases() -> list:
    cases = []
    for flag, field, allowed, values in INT_FLAGS:
        cases += [pytest.param(["plan", flag, v], (field, allowed), id=f"{flag}={v}") for v in values]
        cases += [pytest.param(["plan", flag, v], (flag, field, allowed), id=f"{flag}={v}") for v in ("abc", "1.5")]
    for flag, field, allowed, values in FLOAT_FLAGS:
        cases += [pytest.param(["plan", flag, v], (field, allowed), id=f"{flag}={v}") for v in values]
        cases.append(pytest.param(["plan", flag, "x"], (flag, field, allowed), id=f"{flag}=x"))
    cases += [pytest.param(["plan", flag, "bogus"], (flag, "invalid choice", "choose from"), id=f"{flag}=bogus")
              for flag in CHOICE_FLAGS if flag != "--dataset"]
    # --dataset also takes a path to the user's own file: a name it does not know says both forms
    cases.append(pytest.param(["plan", "--dataset", "bogus"], ("dataset: got 'bogus', must be one of digits",
                                                               "--dataset PATH imports"), id="--dataset=bogus"))
    return cases


LAYOUT_CASES = [
    pytest.param(["plan", "--students", "0"], ("n_students", "[1, n_teachers=8]"), id="students=0"),
    pytest.param(["plan", "--teachers", "4", "--students", "5"], ("n_students", "[1, n_teachers=4]"),
                 id="students>teachers"),
    pytest.param(["plan", "--teachers", "1000"], ("n_teachers x teacher_slices", "must be at most"),
                 id="more-slices-than-samples"),
    pytest.param(["plan", "--student-data", "disjoint", "--student-fraction", "1"], ("student_fraction", "(0, 1)"),
                 id="disjoint-whole-pool"),
    pytest.param(["plan", "--teacher-model", "rgb-cnn"], ("teacher_model", "must be one of"), id="model-misfit"),
    pytest.param(["plan", "--data-root", ""], ("data_root", "a non-empty path"), id="data-root-empty"),
    pytest.param(["plan", "--samples", ""], ("samples", "names no id", POOL), id="samples-empty"),
    pytest.param(["plan", "--samples", " , "], ("samples", "names no id", POOL), id="samples-blank"),
    pytest.param(["plan", "--samples", "3,3"], ("samples", "named twice", POOL), id="samples-twice"),
    pytest.param(["plan", "--samples", "1-5,3"], ("samples", "3 is named twice", POOL), id="samples-overlap"),
    pytest.param(["plan", "--samples", "x"], ("samples", POOL), id="samples-word"),
    pytest.param(["plan", "--samples", "-1"], ("samples", POOL), id="samples-negative"),
    pytest.param(["plan", "--samples", "5-2"], ("samples", "runs backwards"), id="samples-backwards"),
    pytest.param(["plan", "--samples", "1404"], ("samples", POOL), id="samples-past-pool"),
    pytest.param(["plan", "--samples", "0-99999999999"], ("samples", POOL), id="samples-huge-range"),
    pytest.param(["plan", "--samples", "1.5"], ("samples", POOL), id="samples-fraction"),
    pytest.param(["theory", "--teachers", "0"], ("n_teachers", "[1, 100000]"), id="theory-teachers=0"),
    pytest.param(["theory", "--teachers", "-4"], ("n_teachers", "[1, 100000]"), id="theory-teachers<0"),
    pytest.param(["theory", "--teachers", "100000000000"], ("n_teachers", "[1, 100000]"), id="theory-teachers-huge"),
    pytest.param(["theory", "--teachers", "many"], ("n_teachers", "[1, 100000]"), id="theory-teachers-word"),
    pytest.param(["theory", "--students", "0"], ("n_students", "[1, n_teachers=8]"), id="theory-students=0"),
    pytest.param(["theory", "--students", "-2"], ("n_students", "[1, n_teachers=8]"), id="theory-students<0"),
    pytest.param(["theory", "--students", "9"], ("n_students", "[1, n_teachers=8]"), id="theory-students>teachers"),
    pytest.param(["theory", "--student-slices", "0"], ("student_slices", "[1, 10000]"), id="theory-slices=0"),
    pytest.param(["theory", "--student-slices", "10001"], ("student_slices", "[1, 10000]"), id="theory-slices-huge"),
    pytest.param(["theory", "--requests", "-1"], ("requests", "[0, 1000000]"), id="theory-requests<0"),
    pytest.param(["theory", "--requests", "10000000"], ("requests", "[0, 1000000]"), id="theory-requests-huge"),
    pytest.param(["theory", "--requests", "x"], ("requests", "[0, 1000000]"), id="theory-requests-word"),
    pytest.param(["evaluate"], ("run", "no --run given"), id="evaluate-no-run"),
    pytest.param(["evaluate", "--run", "nowhere"], ("run", "does not exist"), id="evaluate-missing-run"),
    pytest.param(["ledger", "--run", "nowhere"], ("run", "does not exist"), id="ledger-missing-run"),
    pytest.param(["forget", "--run", "nowhere", "--samples", "3"], ("run", "does not exist"), id="forget-missing-run"),
]

CONFIG_FILES = [  # what a --config file holds, what the error must name
    pytest.param("[1, 2]", ("config", "JSON array", "object of PurgeConfig fields"), id="array"),
    pytest.param("[]", ("config", "JSON array"), id="empty-array"),
    pytest.param("null", ("config", "JSON null"), id="null"),
    pytest.param('"digits"', ("config", "JSON string"), id="string"),
    pytest.param("42", ("config", "JSON number"), id="number"),
    pytest.param("true", ("config", "JSON boolean"), id="boolean"),
    pytest.param("", ("config", "not valid JSON"), id="empty-file"),
    pytest.param("{", ("config", "not valid JSON"), id="truncated"),
    pytest.param("[" * 100_000, ("config",), id="deeply-nested"),
    pytest.param('{"bogus": 1}', ("config", "unknown field(s) bogus", "known fields are"), id="unknown-field"),
    pytest.param('{"n_teachers": 0}', ("n_teachers", "[1, 100000]"), id="teachers=0"),
    pytest.param('{"n_teachers": "8"}', ("n_teachers", "[1, 100000]"), id="teachers-as-text"),
    pytest.param('{"n_teachers": true}', ("n_teachers", "[1, 100000]"), id="teachers-as-boolean"),
    pytest.param('{"n_teachers": [8]}', ("n_teachers", "[1, 100000]"), id="teachers-as-list"),
    pytest.param('{"seed": -1}', ("seed", "[0, "), id="seed<0"),
    pytest.param('{"dataset": {"a": 1}}', ("dataset", "must be one of"), id="dataset-as-object"),
    pytest.param('{"alpha": NaN}', ("alpha", "[0.0, 1.0]"), id="alpha-nan"),
    pytest.param('{"temperature": Infinity}', ("temperature", "(0, 100.0]"), id="temperature-inf"),
]


@pytest.mark.parametrize("argv, fragments", _flag_cases() + LAYOUT_CASES)
def test_cli_refuses_bad_flags(capsys, argv, fragments):
    assert_refused(*cli(capsys, argv), fragments)


@pytest.mark.parametrize("text, fragments", CONFIG_FILES)
def test_cli_refuses_bad_config_files(tmp_path, capsys, text, fragments):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert_refused(*cli(capsys, ["plan", "--config", str(path)]), fragments)


@pytest.mark.parametrize("make, fragments", [
    pytest.param(lambda p: p, ("config", "cannot read"), id="missing-file"),
    pytest.param(lambda p: (p.mkdir(), p)[1], ("config", "cannot read"), id="a-directory"),
    pytest.param(lambda p: (p.write_bytes(b"\xff\xfe{\x00"), p)[1], ("config", "UTF-8 JSON object"), id="not-utf8"),
    pytest.param(lambda p: (p.write_bytes(b" " * (1 << 20) + b"{}"), p)[1], ("config", "over 1,048,576 bytes"),
                 id="too-big"),
])
def test_cli_refuses_unreadable_config_files(tmp_path, capsys, make, fragments):
    path = make(tmp_path / "config.json")
    assert_refused(*cli(capsys, ["plan", "--config", str(path)]), fragments)


@pytest.mark.parametrize("argv, fragment", [
    (["theory", "--teachers", "100000000000"], "n_teachers: got 100000000000, must be an integer in [1, 100000]"),
    (["plan", "--config", "{config}"], "config: got a JSON array"),
])
def test_a_process_prints_one_sentence_and_no_traceback(tmp_path, argv, fragment):
    (tmp_path / "config.json").write_text("[1, 2]")
    argv = [a.replace("{config}", str(tmp_path / "config.json")) for a in argv]
    done = subprocess.run([sys.executable, "-m", "purge_engine", *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert fragment in done.stderr and done.stderr.count("\n") == 1, done.stderr


# -- 2. requests on a trained run that served one request: refused, the directory byte-identical -----
def _served_cases() -> list:
    """(argv with {run}, {gone} for the forgotten id; fragments)."""
    forget = ["forget", "--run", "{run}", "--samples"]
    return [
        pytest.param([*forget, ""], ("samples", "names no id", POOL), id="forget-empty"),
        pytest.param([*forget, "x"], ("samples", POOL), id="forget-word"),
        pytest.param([*forget, "3,3"], ("samples", "named twice", POOL), id="forget-twice"),
        pytest.param([*forget, "1404"], ("samples", POOL), id="forget-past-pool"),
        pytest.param([*forget, "0-20000000"], ("samples", POOL), id="forget-huge-range"),
        pytest.param([*forget, "{gone}"], ("sample_ids", "already forgotten"), id="forget-again"),
        pytest.param([*forget, "3", "--methods", "bogus"], ("methods", "must be a comma list from"),
                     id="forget-bad-method"),
        pytest.param([*forget, "3", "--methods", ","], ("methods", "must be a comma list from"),
                     id="forget-no-method"),
        pytest.param([*forget, "3", "--workers", "0"], ("workers", "at least 1"), id="forget-workers=0"),
        pytest.param([*forget, "3", "--workers", "x"], ("workers", "at least 1"), id="forget-workers-word"),
        pytest.param([*forget, "3", "--wait", "-1"], ("wait", "[0, 86400]"), id="forget-wait<0"),
        pytest.param([*forget, "3", "--wait", "nan"], ("wait", "[0, 86400]"), id="forget-wait-nan"),
        pytest.param(["verify", "--run", "{run}", "--request", "0"], ("request", "in [1, 1]; only the latest (1)"),
                     id="verify-request=0"),
        pytest.param(["verify", "--run", "{run}", "--request", "7"], ("request", "in [1, 1]; only the latest (1)"),
                     id="verify-request=7"),
        pytest.param([*forget, "3", "--affected-only"], ("affected_only", "needs --verify"), id="forget-affected-only"),
        pytest.param(["verify", "--run", "{run}", "--request", "x"], ("request", "a whole number"),
                     id="verify-request-word"),
        pytest.param(["verify", "--run", "{run}", "--wait", "1e9"], ("wait", "[0, 86400]"), id="verify-wait-huge"),
        pytest.param(["certificate", "--run", "{run}", "--request", "9"], ("request", "must be one of [1]"),
                     id="certificate-request=9"),
        pytest.param(["certificate", "--run", "{run}", "--request", "-1"], ("request", "must be one of [1]"),
                     id="certificate-request<0"),
        pytest.param(["train", "--run", "{run}", "--epochs", "3", "--teachers", "4", "--students", "2"],
                     ("run", "another config", "epochs is 2 there"), id="train-other-config"),
        pytest.param(["train", "--run", "{run}", "--methods", "bogus"], ("methods", "must be a comma list from"),
                     id="train-bad-method"),
        pytest.param(["train", "--run", "{run}", "--teachers", "0"], ("n_teachers", "[1, 100000]"),
                     id="train-teachers=0"),
        pytest.param(["evaluate", "--run", "{run}", "--wait", "-5"], ("wait", "[0, 86400]"), id="evaluate-wait<0"),
        pytest.param(["evaluate", "--run", "{run}/checkpoints"], ("run", "not a run directory"),
                     id="evaluate-inside-run"),
        pytest.param(["train", "--run", "{run}/config.json"], ("run", "is not a directory"), id="train-into-a-file"),
        pytest.param(["evaluate", "--run", "{run}/plan.json"], ("run", "not a run directory"), id="evaluate-a-file"),
    ]


@pytest.mark.parametrize("argv, fragments", _served_cases())
def test_cli_requests_on_a_run_are_refused_and_leave_it_as_it_was(served, capsys, argv, fragments):
    root, gone = served
    before = tree(root)
    argv = [a.replace("{run}", str(root)).replace("{gone}", str(gone)) for a in argv]
    assert_refused(*cli(capsys, argv), fragments)
    assert tree(root) == before


API_REQUESTS = [  # Experiment call on the served run, what the error must name
    pytest.param(lambda e, g: e.forget([]), ("sample_ids", "empty request", POOL), id="forget-nothing"),
    pytest.param(lambda e, g: e.forget([3, 3]), ("sample_ids", "more than once", POOL), id="forget-twice"),
    pytest.param(lambda e, g: e.forget(["3"]), ("sample_ids", "whole numbers", POOL), id="forget-text-id"),
    pytest.param(lambda e, g: e.forget([2.5]), ("sample_ids", "whole numbers", POOL), id="forget-fraction"),
    pytest.param(lambda e, g: e.forget([True]), ("sample_ids", "whole numbers", POOL), id="forget-boolean"),
    pytest.param(lambda e, g: e.forget([-1]), ("sample_ids", POOL), id="forget-negative"),
    pytest.param(lambda e, g: e.forget([10**12]), ("sample_ids", POOL), id="forget-huge-id"),
    pytest.param(lambda e, g: e.forget(None), ("sample_ids", "empty request"), id="forget-none"),
    pytest.param(lambda e, g: e.forget([g]), ("sample_ids", "already forgotten"), id="forget-again"),
    pytest.param(lambda e, g: e.forget([3], methods=["bogus"]), ("methods", "must be among"), id="forget-method"),
    pytest.param(lambda e, g: e.forget([3], methods=[]), ("methods", "got none", "carrying what it learned"),
                 id="forget-no-student-method"),
    pytest.param(lambda e, g: e.verify(request_id=0), ("request", "served, in [1, 1]"), id="verify-0"),
    pytest.param(lambda e, g: e.verify(request_id=2), ("request", "served, in [1, 1]"), id="verify-2"),
    pytest.param(lambda e, g: e.ledger.record(5), ("request", "must be one of [1]"), id="record-5"),
    pytest.param(lambda e, g: e.ledger.certificate(0), ("request", "must be one of [1]"), id="certificate-0"),
    pytest.param(lambda e, g: e.train(methods=["purge", "nope"]), ("methods", "must be among"), id="train-method"),
    pytest.param(lambda e, g: Experiment.create(e.config.replace(seed=1), e.store.root),
                 ("run", "another config", "seed is 0 there"), id="create-over-another"),
]


@pytest.mark.parametrize("call, fragments", API_REQUESTS)
def test_api_requests_on_a_run_are_refused_and_leave_it_as_it_was(served, call, fragments):
    root, gone = served
    exp = Experiment.open(root)
    before = tree(root)
    with pytest.raises(ValueError) as refused:
        call(exp, gone)
    for fragment in fragments:
        assert fragment in str(refused.value)
    assert tree(root) == before


# -- 3. damaged run directories: every command says what is wrong, and changes nothing -------------------
def _sql(root: Path, *statements: str) -> None:
    conn = sqlite3.connect(root / "ledger.sqlite")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _replace_ledger(root: Path) -> None:
    """Another ledger of the same length, entries that were never this run's."""
    (root / "ledger.sqlite").unlink()
    from purge_engine.rundir.ledger import Ledger

    other = Ledger(root / "other.sqlite")
    for kind in ("started", "done"):
        other.append(1, kind, {"sample_ids": [1]})
    (root / "other.sqlite").rename(root / "ledger.sqlite")
    (root / "other.head.json").unlink()


DAMAGE = {  # name -> (how, what the error names)
    "ledger-zero-bytes": (lambda r: (r / "ledger.sqlite").write_bytes(b""), ("ledger", "is empty (0 bytes)")),
    "ledger-garbage": (lambda r: (r / "ledger.sqlite").write_bytes(b"not a database" * 100),
                       ("ledger", "cannot be read as a ledger")),
    "ledger-deleted": (lambda r: (r / "ledger.sqlite").unlink(), ("ledger", "is missing", "records 2 entries")),
    "ledger-cut-short": (lambda r: _sql(r, "DROP TRIGGER entries_no_delete", "DELETE FROM entries WHERE seq = 2"),
                         ("ledger", "holds 1 entries", "records 2")),
    "ledger-first-row-gone": (lambda r: _sql(r, "DROP TRIGGER entries_no_delete", "DELETE FROM entries WHERE seq = 1"),
                              ("ledger", "entries were deleted")),
    "ledger-table-dropped": (lambda r: _sql(r, "DROP TABLE entries"), ("ledger", "no such table")),
    "ledger-replaced": (_replace_ledger, ("ledger", "entry 2 is not the one its anchor")),
    "anchor-garbage": (lambda r: (r / "ledger.head.json").write_text("{"), ("ledger", "anchor", "cannot be read")),
}
COMMANDS = {
    "evaluate": ["evaluate", "--run", "{run}"],
    "forget": ["forget", "--run", "{run}", "--samples", "3"],
    "verify": ["verify", "--run", "{run}"],
    "ledger": ["ledger", "--run", "{run}"],
    "certificate": ["certificate", "--run", "{run}", "--request", "1"],
}


def _config_damage(edit):
    def damage(root: Path) -> None:
        data = json.loads((root / "config.json").read_text())
        (root / "config.json").write_text(json.dumps(edit(data)))
    return damage


RUN_DAMAGE = {  # name -> (how, what the error names); tried with evaluate
    "config-missing-seed": (_config_damage(lambda d: {k: v for k, v in d.items() if k != "seed"}),
                            ("config", "missing field(s) seed", "must name every field")),
    "config-array": (_config_damage(lambda d: [1, 2]), ("run", "config.json", "JSON array")),
    "config-null": (_config_damage(lambda d: None), ("run", "config.json", "JSON null")),
    "config-teachers=0": (_config_damage(lambda d: {**d, "n_teachers": 0}), ("n_teachers", "[1, 100000]")),
    "config-unknown-field": (_config_damage(lambda d: {**d, "extra": 1}), ("config", "unknown field(s) extra")),
    "config-not-json": (lambda r: (r / "config.json").write_text("{"), ("run config", "not valid JSON")),
    "plan-array": (lambda r: (r / "plan.json").write_text("[]"), ("run", "plan.json cannot be read")),
    "plan-not-json": (lambda r: (r / "plan.json").write_bytes(b"\x00\x01"), ("run plan", "not valid JSON")),
    "config-a-directory": (lambda r: ((r / "config.json").unlink(), (r / "config.json").mkdir()),
                           ("run", "not a run directory")),
}


def _damaged(served, tmp_path, damage) -> Path:
    """A copy of the served run's records (its checkpoints are never reached: opening it is refused), damaged."""
    root = tmp_path / "damaged"
    shutil.copytree(served[0], root, ignore=shutil.ignore_patterns("checkpoints", "soft_labels"))
    damage(root)
    return root


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_ledger_is_one_sentence_for_every_command(served, tmp_path, capsys, damage, command):
    how, fragments = DAMAGE[damage]
    root = _damaged(served, tmp_path, how)
    before = tree(root)
    assert_refused(*cli(capsys, [a.replace("{run}", str(root)) for a in COMMANDS[command]]), fragments)
    assert tree(root) == before


@pytest.mark.parametrize("damage", list(RUN_DAMAGE))
def test_a_damaged_config_or_plan_is_refused_on_open(served, tmp_path, capsys, damage):
    how, fragments = RUN_DAMAGE[damage]
    root = _damaged(served, tmp_path, how)
    before = tree(root)
    assert_refused(*cli(capsys, ["evaluate", "--run", str(root)]), fragments)
    assert tree(root) == before


def test_an_untrained_run_refuses_forget_and_evaluate_without_adding_a_file(tiny_config, tmp_path, capsys):
    exp = Experiment.create(tiny_config, tmp_path / "untrained")
    before = tree(exp.store.root)
    assert_refused(*cli(capsys, ["forget", "--run", str(exp.store.root), "--samples", "3"]),
                   ("run", "not trained for the current plan"))
    assert_refused(*cli(capsys, ["evaluate", "--run", str(exp.store.root)]), ("run", "no trained teachers"))
    assert_refused(*cli(capsys, ["verify", "--run", str(exp.store.root)]), ("request", "no forget request yet"))
    assert tree(exp.store.root) == before


# -- 4. pure API calls ---------------------------------------------------------------------------
API_CALLS = [
    pytest.param(lambda: PurgeConfig.from_dict([1, 2]), ("config", "JSON array"), id="from_dict-list"),
    pytest.param(lambda: PurgeConfig.from_dict(None), ("config", "JSON null"), id="from_dict-none"),
    pytest.param(lambda: PurgeConfig.from_json("[]"), ("config", "JSON array"), id="from_json-array"),
    pytest.param(lambda: PurgeConfig.from_json("{"), ("config", "not valid JSON"), id="from_json-truncated"),
    pytest.param(lambda: PurgeConfig.from_dict({"seed": 1}, complete=True), ("config", "missing field(s) dataset"),
                 id="from_dict-incomplete"),
    pytest.param(lambda: PurgeConfig.from_dict({1: 2}), ("config", "unknown field(s) 1"), id="from_dict-int-key"),
    pytest.param(lambda: PurgeConfig(n_teachers=8, n_students=0).validate(), ("n_students", "[1, n_teachers=8]"),
                 id="students=0"),
    pytest.param(lambda: PurgeConfig(epochs=2.5).validate(), ("epochs", "[1, 10000]"), id="epochs-fraction"),
    pytest.param(lambda: PurgeConfig(seed=2**64).validate(), ("seed", "[0, "), id="seed-huge"),
    pytest.param(lambda: PurgeConfig(threads=True).validate(), ("threads", "[0, 256]"), id="threads-boolean"),
    pytest.param(lambda: PurgeConfig(student_model="text-bag").validate(), ("student_model", "must be one of"),
                 id="student-model-misfit"),
    pytest.param(lambda: PurgeConfig(data_root="").validate(), ("data_root", "non-empty path"), id="data-root-empty"),
    pytest.param(lambda: theory.teacher_side_speedup(0, 1, 1), ("n_teachers", "[1, 100000]"), id="theory-teachers=0"),
    pytest.param(lambda: theory.teacher_side_speedup(8, 0, 1), ("n_students", "[1, n_teachers=8]"),
                 id="theory-students=0"),
    pytest.param(lambda: theory.teacher_side_speedup(8, 2, 0), ("student_slices", "[1, 10000]"), id="theory-r=0"),
    pytest.param(lambda: theory.teacher_side_speedup(10**11, 2, 1), ("n_teachers", "[1, 100000]"),
                 id="theory-teachers-huge"),
    pytest.param(lambda: theory.batched_teacher_side_speedup(8, 2, 1, 0), ("n_requests", ">= 1"),
                 id="theory-batch-of-none"),
    pytest.param(lambda: theory.check_layout(8, 2, 1, -3), ("requests", "[0, 1000000]"), id="theory-requests<0"),
    pytest.param(lambda: make_plan(PurgeConfig(), 1404).check_request([5, 5]), ("sample_ids", "more than once"),
                 id="plan-twice"),
    pytest.param(lambda: make_plan(PurgeConfig(), 1404).check_request([]), ("sample_ids", POOL), id="plan-empty"),
    pytest.param(lambda: make_plan(PurgeConfig(), 1404).check_request([1404]), ("sample_ids", POOL),
                 id="plan-past-pool"),
    pytest.param(lambda: parse_ids("4 2-6", 1404), ("samples", "4 is named twice", POOL), id="parse-twice"),
    pytest.param(lambda: parse_ids("\t\n", 1404), ("samples", "names no id", POOL), id="parse-blank"),
    pytest.param(lambda: parse_ids("0x10", 1404), ("samples", POOL), id="parse-hex"),
    pytest.param(lambda: parse_ids("٣", 1404), ("samples", POOL), id="parse-arabic-digit"),
]


@pytest.mark.parametrize("call, fragments", API_CALLS)
def test_api_calls_are_refused_with_the_field_named(call, fragments):
    with pytest.raises(ValueError) as refused:
        call()
    for fragment in fragments:
        assert fragment in str(refused.value)


# -- 5. the dashboard: run names and layout links ------------------------------------------------------
ALLOWED = "1 to 100 characters of letters, digits"


@pytest.mark.parametrize("name", ["..", ".", "../x", "/etc", "a/b", "a\\b", "", ".hidden", "-rf", "a b", "näme",
                                  "a\x00b", "x" * 101, "~", "runs/../..", " lead"])
def test_a_run_name_is_a_name(tmp_path, name):
    with pytest.raises(ValueError) as refused:
        run_dir_under(tmp_path, name)
    assert "run_name" in str(refused.value) and ALLOWED in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_run_name_may_not_lead_out_through_a_symlink(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "escape").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="run_name: 'escape' resolves outside"):
        run_dir_under(tmp_path / "runs", "escape")
    assert run_dir_under(tmp_path / "runs", "digits-t8-s4.r2x2_e20") == tmp_path / "runs" / "digits-t8-s4.r2x2_e20"
    assert check_run_name("x" * 100) == "x" * 100


@pytest.mark.parametrize("params, fragments", [
    ({"n_teachers": "abc"}, ("n_teachers", "[1, 100000]")),
    ({"n_teachers": "0"}, ("n_teachers", "[1, 100000]")),
    ({"n_students": "1e9"}, ("n_students", "[1, 100000]")),
    ({"student_fraction": "nan"}, ("student_fraction", "[0.05, 1.0]")),
    ({"seed": "-1"}, ("seed", f"[0, {2**53 - 1}]")),
    ({"dataset": "../../etc"}, ("dataset", "must be one of")),
    ({"epochs": "9" * 400}, ("epochs", "[1, 10000]")),
])
def test_a_links_layout_is_refused_field_by_field(params, fragments):
    values, errors = layout_from_query(params)
    assert values == {} and len(errors) == 1
    for fragment in fragments:
        assert fragment in errors[0]


# -- 6. data files: a pickle that would run code is refused unread --------------------------------
class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("PWNED"),))


def _cifar10(root: Path, batch_1) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 1]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(rows))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch_1))
    return folder


@pytest.mark.parametrize("batch_1", [
    pytest.param({"data": _Payload(), "labels": [0]}, id="reduce-payload"),
    pytest.param(_Payload(), id="payload-alone"),
    pytest.param(b"\x80\x04not a pickle", id="garbage"),
])
def test_a_cifar_file_that_is_not_plain_data_is_never_unpickled(tmp_path, batch_1):
    folder = _cifar10(tmp_path / "data", batch_1)
    if isinstance(batch_1, bytes):
        (folder / "data_batch_1").write_bytes(batch_1)
    load_dataset.cache_clear()
    with pytest.raises(DatasetUnavailable) as refused:
        load_dataset("cifar10", str(tmp_path / "data"))
    assert "data_root" in str(refused.value) and "data_batch_1" in str(refused.value)
    assert not (tmp_path / "PWNED").exists()  # the payload's touch never ran


def test_plain_cifar_files_still_load(tmp_path):
    _cifar10(tmp_path / "data", {"data": np.ones((2, 3072), dtype=np.uint8), "labels": [3, 4]})
    load_dataset.cache_clear()
    bundle = load_dataset("cifar10", str(tmp_path / "data"), memory_format="contiguous")
    assert bundle.n_train == 10 and bundle.train_y[:2].tolist() == [3, 4]


def _declaring(array: np.ndarray, pattern: bytes, declared: bytes) -> bytes:
    """A CIFAR batch pickling array, its shape in the pickle (pattern) replaced by a larger one (declared)."""
    data = pickle.dumps({"data": array, "labels": [0, 1]}, protocol=2)
    assert data.count(pattern) == 1
    return data.replace(pattern, declared)


@pytest.mark.parametrize("batch_1, fragment", [
    pytest.param(_declaring(np.array([None, None], dtype=object), b"K\x01K\x02\x85",
                            b"K\x01J" + (2 * 10**8).to_bytes(4, "little") + b"\x85"),
                 "an array of dtype object", id="object-array-of-2e8-entries"),
    pytest.param(_declaring(np.zeros((2, 3072), dtype=np.uint8), b"K\x01K\x02M\x00\x0c\x86",
                            b"K\x01J" + (100_000).to_bytes(4, "little") + b"M\x00\x0c\x86"),
                 "more than 268,435,456 bytes", id="uint8-array-over-the-limit"),
])
def test_a_cifar_file_declaring_huge_arrays_is_refused_before_they_are_built(tmp_path, batch_1, fragment):
    import torchvision.datasets  # noqa: F401 - imported before memory is measured

    folder = _cifar10(tmp_path / "data", {"data": np.ones((2, 3072), dtype=np.uint8), "labels": [3, 4]})
    (folder / "data_batch_1").write_bytes(batch_1)
    load_dataset.cache_clear()
    tracemalloc.start()
    try:
        with pytest.raises(DatasetUnavailable) as refused:
            load_dataset("cifar10", str(tmp_path / "data"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "data_batch_1" in str(refused.value) and fragment in str(refused.value), str(refused.value)
    assert peak < 64 * 2**20, f"{peak:,} bytes held"


def test_the_suite_has_at_least_100_distinct_cases(request):
    cases = {item.name for item in request.session.items if item.module.__name__ == __name__ and "[" in item.name}
    assert len(cases) >= 100
