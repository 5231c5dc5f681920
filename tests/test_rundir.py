"""rundir/: the run directory's names format and parse themselves, the walks name exactly the files a
trained run holds, one atomic write leaves the old file or the new one, the ledger knows its kinds."""

import pytest

from purge_engine.constituents import ROLES
from purge_engine.plan import METHODS
from purge_engine.rundir import records
from purge_engine.rundir.atomic import TEMP_GLOB, atomic_write, atomic_write_json
from purge_engine.rundir.ledger import Ledger
from purge_engine.rundir.names import (
    CheckpointName,
    ConstituentName,
    LabelName,
    checkpoint_walk,
    label_walk,
)


@pytest.mark.parametrize("name, text", [
    (ConstituentName("single_teacher", 3), "single_teacher-3"),
    (CheckpointName("teacher", 12, 0), "teacher-12/step-0"),
    (LabelName("purge", 1, 0, 2, 3), "purge-1/chunk-0-slice-2-teacher-3"),
])
def test_a_name_reads_back_what_it_writes(name, text):
    assert str(name) == text and type(name).parse(text) == name


def test_a_stored_name_has_its_folder_and_stem():
    name = CheckpointName("baseline", 1, 4)
    assert (name.AREA, name.folder, name.stem, name.owner) == ("checkpoints", "baseline-1", "step-4",
                                                               ConstituentName("baseline", 1))
    label = LabelName("single_teacher", 0, 1, 0, 2)
    assert (label.AREA, label.folder, label.stem) == ("soft_labels", "single_teacher-0", "chunk-1-slice-0-teacher-2")


@pytest.mark.parametrize("parse, text", [
    (ConstituentName.parse, "teacher"), (ConstituentName.parse, "teacher-x"), (CheckpointName.parse, "teacher-1"),
    (CheckpointName.parse, "teacher-1/step-1/x"), (LabelName.parse, "purge-1/chunk-0-slice-2"),
    (CheckpointName.parse, None),
])
def test_a_malformed_name_is_refused_with_the_form_it_must_take(parse, text):
    with pytest.raises(ValueError, match="must read"):
        parse(text)


def test_the_walks_name_every_file_of_a_trained_run_and_no_other(train_once, tiny_config):
    exp = train_once(tiny_config)
    root = exp.store.root
    walked = {exp.store.stem(n).with_suffix(".json") for n, _ in checkpoint_walk(exp.chains, tuple(ROLES))}
    walked |= {exp.store.stem(n).with_suffix(".json") for n in label_walk(exp.plan, METHODS)}
    stored = {p for area in ("checkpoints", "soft_labels") for p in (root / area).rglob("*.json")}
    assert walked == stored


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a" / "config.json"
    atomic_write_json(path, {"x": 1})

    def half(temp):
        temp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_text() == '{\n  "x": 1\n}\n' and not list(path.parent.glob(TEMP_GLOB))
    assert atomic_write(path, lambda temp: temp.write_text("new") and "returned") == "returned"
    assert path.read_text() == "new"


def test_the_ledger_refuses_a_kind_its_schema_does_not_name(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.append(1, records.STARTED, {records.SAMPLE_IDS: [3, 5]})
    with pytest.raises(ValueError, match="entry kind 'finished'"):
        ledger.append(1, "finished", {})
    entries = ledger.entries()
    assert records.pending_ids(entries) == [1] and records.asked_ids(entries) == {3, 5}
    ledger.append(1, records.DONE, {})
    assert ledger.pending() == [] and ledger.latest_done() == 1 and ledger.record(1)[records.STATUS] == records.DONE


# -- a full disk (issue 28, defect 7) ---------------------------------------------------------------------
def test_a_write_that_would_not_fit_is_refused_before_it_starts_and_the_old_file_stays(tmp_path, monkeypatch):
    from collections import namedtuple

    from purge_engine.rundir import atomic

    path = tmp_path / "plan.json"
    path.write_text("old")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _where: usage(10**9, 10**9 - 100, 100))
    needed = r"disk full: cannot write plan.json in .* \(0.0 MiB needed, 0.0 MiB free\)"
    with pytest.raises(atomic.DiskFull, match=needed):
        atomic.atomic_write_bytes(path, b"x" * 1000)
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_a_library_that_meets_a_full_disk_mid_write_gives_the_sentence(tmp_path):
    import errno

    from purge_engine.rundir import atomic

    def fills_the_disk(temp):
        temp.write_bytes(b"half")
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                           "\"No space left on device\" })")  # as safetensors words it

    with pytest.raises(atomic.DiskFull) as raised:
        atomic.atomic_write(tmp_path / "step-0.safetensors", fills_the_disk)
    assert raised.value.errno == errno.ENOSPC and str(raised.value).startswith("disk full: cannot write step-0")
    assert list(tmp_path.iterdir()) == []  # the temp file is gone


def test_a_forget_request_that_meets_a_full_disk_says_so_and_finishes_once_there_is_space(
        train_once, tiny_config, tmp_path, monkeypatch, capsys):
    from collections import namedtuple

    from purge_engine.cli import main
    from purge_engine.experiment import Experiment
    from purge_engine.rundir import atomic
    from tests.conftest import copy_of

    exp = copy_of(train_once(tiny_config), tmp_path / "run")
    sample = int(exp.plan.teacher_shards[1][0][0])
    real = atomic.shutil.disk_usage
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _where: usage(10**9, 10**9, 0))
    assert main(["forget", "--run", str(exp.store.root), "--samples", str(sample), "--no-evidence"]) == 2
    err = capsys.readouterr().err
    assert "error: disk full: cannot write" in err and "Traceback" not in err
    monkeypatch.setattr(atomic.shutil, "disk_usage", real)
    finished = Experiment.open(exp.store.root)  # the journaled request is finished on open
    assert finished.latest_request() == 1 and sample in finished.plan.forgotten
    verdict = finished.verify(affected_only=True)
    assert verdict["exact"] is True, verdict["reason"]
