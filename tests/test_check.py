"""check --repair (issue 17, item 6): every kind of damage to a trained run that has served a request is
found, and repair makes the run whole with every rebuilt file's parameter hash equal to the one the
manifest recorded before the damage. One trained run, copied per case."""

import json
import shutil
import threading
from pathlib import Path

import pytest

from purge_engine.check import check_run
from purge_engine.cli import main
from purge_engine.execution.choice import recorded_path
from purge_engine.experiment import Experiment
from purge_engine.rundir.checkpoints import read_sidecar
from purge_engine.rundir.files import CheckpointError
from purge_engine.rundir.leftovers import clean_leftovers
from purge_engine.rundir.lock import writer_lock
from purge_engine.rundir.manifest import read_manifest
from purge_engine.rundir.names import MANIFEST_NAME, CheckpointName
from purge_engine.rundir.store import RunStore


@pytest.fixture(scope="module")
def served(train_once, tiny_config, tmp_path_factory):
    """The tiny run, trained, after one forget request that touched a teacher and a student."""
    root = tmp_path_factory.mktemp("check") / "served"
    shutil.copytree(train_once(tiny_config).store.root, root)
    exp = Experiment.open(root)
    exp.forget([int(exp.plan.teacher_shards[0][1][0]), int(exp.plan.student_shards[1][0][0][0])], score=False)
    return exp


@pytest.fixture(scope="module")
def evaluated(served, tmp_path_factory):
    """The served run after one evaluation (its outputs cache filled), and that evaluation's result."""
    root = tmp_path_factory.mktemp("check") / "evaluated"
    shutil.copytree(served.store.root, root)
    return root, Experiment.open(root).evaluate()


def copy(served, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(served.store.root, target)
    return target


def first_label(root: Path, method: str = "purge") -> Path:
    return sorted((root / "soft_labels" / f"{method}-0").glob("*.safetensors"))[0]


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length: only the hash tells
    path.write_bytes(bytes(data))


def rekey(path: Path) -> None:
    meta = json.loads(path.read_text())
    meta["key"] = "0" * 20
    path.write_text(json.dumps(meta))


DAMAGE = {
    "deleted checkpoint": ("checkpoints/teacher-0/step-0.safetensors", lambda p: p.unlink()),
    "corrupted checkpoint": ("checkpoints/purge-1/step-2.safetensors", flip_bytes),
    "truncated checkpoint": ("checkpoints/teacher-2/step-1.safetensors",
                             lambda p: p.write_bytes(p.read_bytes()[:50])),
    "deleted sidecar": ("checkpoints/teacher-1/step-1.json", lambda p: p.unlink()),
    "sidecar with another key": ("checkpoints/baseline-0/step-1.json", rekey),
    "unreadable sidecar": ("checkpoints/single_teacher-1/step-0.json", lambda p: p.write_text("{")),
    "deleted soft-label file": (None, lambda p: p.unlink()),
    "corrupted soft-label file": (None, flip_bytes),
    "corrupted plan.json": ("plan.json", lambda p: p.write_text(p.read_text()[:-20])),
    "deleted config.json": ("config.json", lambda p: p.unlink()),
    "leftover temp file": ("checkpoints/teacher-0/.step-1.safetensors.x1y2.tmp", lambda p: p.write_bytes(b"half")),
}


def recorded_hashes(root: Path) -> dict[str, str]:
    """Every checkpoint's and soft-label file's parameter hash, from the sidecars."""
    return {str(p.relative_to(root)): read_sidecar(p.with_suffix(""))["param_hash"]
            for folder in ("checkpoints", "soft_labels") for p in sorted((root / folder).rglob("*.json"))}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_check_finds_each_damage_and_repair_rebuilds_it_with_proof(served, tmp_path, kind):
    root = copy(served, tmp_path)
    before = recorded_hashes(root)
    relative, damage = DAMAGE[kind]
    path = first_label(root) if relative is None else root / relative
    damage(path)
    found = check_run(root)
    assert not found["run_whole"] and str(path.relative_to(root)) in [d["path"] for d in found["damaged"]]
    repaired = check_run(root, repair=True)
    assert repaired["proved"] and repaired["run_whole"], repaired
    assert repaired["repaired"] and all(r["proved"] for r in repaired["repaired"])
    for row in repaired["repaired"]:
        if "param_hash" in row:  # a rebuilt checkpoint or label file equals the one recorded before the damage
            assert row["param_hash"] == row["recorded_hash"]
    assert recorded_hashes(root) == before
    assert check_run(root) ["damaged"] == []


def test_a_damaged_step_rebuilds_it_and_the_later_steps_of_its_constituent_only(served, tmp_path):
    root = copy(served, tmp_path)
    (root / "checkpoints/teacher-3/step-0.safetensors").unlink()
    rebuilt = [r["path"] for r in check_run(root, repair=True)["repaired"]]
    assert rebuilt == ["checkpoints/teacher-3/step-0.safetensors", "checkpoints/teacher-3/step-1.safetensors"]


def test_a_deleted_manifest_is_rebuilt_and_checked_against_the_ledger(served, tmp_path):
    root = copy(served, tmp_path)
    (root / MANIFEST_NAME).unlink()
    assert [d["path"] for d in check_run(root)["damaged"]] == [MANIFEST_NAME]
    report = check_run(root, repair=True)
    assert report["proved"] and report["run_whole"] and "ledger's request 1: equal" in report["notes"][0]
    assert read_manifest(RunStore(root))["checkpoints"]


def test_an_edited_manifest_is_found(served, tmp_path):
    root = copy(served, tmp_path)
    data = json.loads((root / MANIFEST_NAME).read_text())
    data["checkpoints"]["teacher-0/step-0"]["param_hash"] = "f" * 20
    (root / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="digest"):
        read_manifest(RunStore(root))
    assert "digest" in check_run(root)["damaged"][0]["problem"]


def test_files_rolled_back_to_before_a_request_are_caught_by_the_ledger(served, train_once, tiny_config, tmp_path):
    """The run's files copied back from before request 1 (config, plan, manifest, checkpoints, every
    digest consistent) beside the ledger that served it: the samples would be back in the models."""
    root = tmp_path / "rolled-back"
    shutil.copytree(train_once(tiny_config).store.root, root)
    for name in ("ledger.sqlite", "ledger.head.json"):
        shutil.copy2(served.store.root / name, root / name)
    report = check_run(root, repair=True)
    problems = [d["problem"] for d in report["unrepairable"]]
    assert not report["run_whole"] and not report["repaired"]
    assert any("rolled back to before a request" in p for p in problems)
    assert any("another parameter hash than the ledger's request 1" in p for p in problems)


def test_a_manifest_rewritten_with_a_consistent_digest_is_caught_by_the_ledger(served, tmp_path):
    from purge_engine.rundir.manifest import digest_of

    root = copy(served, tmp_path)
    final = max((n for n in read_manifest(RunStore(root))["checkpoints"] if n.startswith("teacher-0/")),
                key=lambda n: CheckpointName.parse(n).step)
    data = json.loads((root / MANIFEST_NAME).read_text())
    data["checkpoints"][final]["param_hash"] = "f" * 20
    data["digest"] = digest_of(data)  # an edit that knows the digest
    (root / MANIFEST_NAME).write_text(json.dumps(data))
    damaged = check_run(root)["damaged"]
    assert any(d["path"] == MANIFEST_NAME and "ledger's request 1" in d["problem"] for d in damaged)


def test_a_rebuilt_config_keeps_the_path_its_run_was_trained_on(served, tmp_path):
    """config.json's execution record is outside the fingerprint, yet it decides which executor serves the
    run: a config.json rebuilt from the manifest takes the path back from the first checkpoint's sidecar."""
    root = copy(served, tmp_path)
    before = recorded_path(RunStore(root))
    (root / "config.json").unlink()
    assert check_run(root, repair=True)["run_whole"]
    assert before is not None and recorded_path(RunStore(root)) == before


def test_a_served_run_agrees_with_its_ledger(served, tmp_path):
    assert check_run(copy(served, tmp_path))["damaged"] == []


def test_a_ledger_cut_short_is_reported_as_unrepairable(served, tmp_path):
    root = copy(served, tmp_path)
    (root / "ledger.sqlite").write_bytes(b"")
    report = check_run(root, repair=True)
    assert not report["run_whole"] and report["unrepairable"][0]["path"] == "ledger.sqlite"
    assert "cannot be rebuilt" in report["unrepairable"][0]["problem"]


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_ledger_gone_with_its_anchor_is_damage_not_a_new_run(served, tmp_path, how):
    """Both the database and its anchor removed (or both emptied) agree with each other; the plan and the
    manifest still record the forgotten samples, which no request names any more."""
    root = copy(served, tmp_path)
    for name in ("ledger.sqlite", "ledger.head.json"):
        if how == "removed":
            (root / name).unlink()
        else:
            (root / name).write_bytes(b"")
    report = check_run(root, repair=True)
    assert not report["run_whole"] and not report["repaired"]
    assert any(d["path"] == "ledger.sqlite" and "names no request for" in d["problem"] for d in report["unrepairable"])
    refusal = "that no request in its ledger names: the ledger was removed" if how == "removed" else \
        "ledger.head.json cannot be read"  # an emptied anchor is refused on its own
    with pytest.raises(ValueError, match=refusal):
        Experiment.open(root)  # never numbered "request 1" again


def test_a_run_stuck_on_a_damaged_checkpoint_is_healed_and_its_request_finished(served, tmp_path):
    """Today's failure: a forget request that must restore a corrupted step dies mid-request. Repair
    rebuilds the step, finishes the journaled request, and the result verifies exact."""
    root = copy(served, tmp_path)
    flip_bytes(root / "checkpoints/teacher-1/step-0.safetensors")
    exp = Experiment.open(root)
    with pytest.raises(CheckpointError, match="check --run .* --repair"):
        exp.forget([int(exp.plan.teacher_shards[1][1][1])], score=False)
    assert exp.ledger.pending() == [2]
    report = check_run(root, repair=True)
    assert report["proved"] and report["run_whole"]
    assert "finished request 2" in report["repaired"][-1]["action"]
    healed = Experiment.open(root)
    assert healed.ledger.pending() == [] and healed.verify(affected_only=True)["exact"]


def test_leftover_temp_files_are_cleaned_on_open_unless_a_writer_lives(served, tmp_path):
    root = copy(served, tmp_path)
    temp = root / "soft_labels" / "purge-0" / ".chunk-0-slice-0-teacher-0.safetensors.abc.tmp"
    temp.write_bytes(b"half a file")
    held, release = threading.Event(), threading.Event()

    def writer():  # another thread's flock conflicts with ours, as another process's would
        with writer_lock(RunStore(root), holder="a test writer"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait(10)
    assert clean_leftovers(RunStore(root)) == [] and temp.exists()  # the live writer may own it
    release.set()
    thread.join()
    Experiment.open(root)
    assert not temp.exists()


def test_the_cli_exits_1_on_a_damaged_run_and_0_once_repaired(served, tmp_path, capsys):
    root = copy(served, tmp_path)
    (root / "checkpoints/purge-0/step-3.json").unlink()
    assert main(["check", "--run", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["damaged"] == [{"path": "checkpoints/purge-0/step-3.json", "problem": "sidecar missing"}]
    assert main(["check", "--run", str(root), "--repair"]) == 0
    assert "proved" in capsys.readouterr().out


def test_a_deleted_teacher_sidecar_points_evaluate_at_check_repair(served, tmp_path):
    root = copy(served, tmp_path)
    (root / "checkpoints/teacher-0/step-1.json").unlink()
    with pytest.raises(CheckpointError, match="final checkpoints of Teacher.*check --run .* --repair"):
        Experiment.open(root).evaluate()


def test_a_dead_verifications_scratch_run_is_found_and_removed(served, tmp_path):
    root = copy(served, tmp_path)
    (root / "scratch" / "verify" / "checkpoints").mkdir(parents=True)
    (root / "scratch" / "verify" / "config.json").write_text("{}")
    assert [d["path"] for d in check_run(root)["damaged"]] == ["scratch/verify"]
    report = check_run(root, repair=True)
    assert report["run_whole"] and not (root / "scratch" / "verify").exists()


def test_a_symlinked_lock_file_is_refused_and_its_target_left_intact(served, tmp_path):
    root = copy(served, tmp_path)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (root / "writer.lock").unlink(missing_ok=True)
    (root / "writer.lock").symlink_to(target)
    exp = Experiment.open(root)
    with pytest.raises(ValueError, match="writer.lock is a symbolic link; a run directory opens nothing"):
        exp.forget([int(exp.plan.teacher_shard(1)[0])], score=False)
    assert target.read_text() == "keep me"


def test_a_symlinked_constituent_folder_is_refused_and_repair_writes_nothing_outside(served, tmp_path):
    root = copy(served, tmp_path)
    outside = tmp_path / "outside"
    folder = root / "checkpoints" / "teacher-1"
    shutil.move(folder, outside)
    folder.symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(ValueError, match="teacher-1 is a symbolic link"):
        Experiment.open(root).evaluate()
    report = check_run(root, repair=True)
    assert not report["run_whole"] and not report["repaired"]
    assert any("teacher-1 is a symbolic link" in d["problem"] for d in report["unrepairable"])
    assert sorted(p.name for p in outside.iterdir()) == before


def test_a_tampered_outputs_file_is_damage_and_repair_removes_it_to_be_recomputed(evaluated, tmp_path, capsys):
    from tests.test_outputs import overwrite_outputs

    root, first = tmp_path / "run", evaluated[1]
    shutil.copytree(evaluated[0], root)
    assert check_run(root)["run_whole"]  # intact outputs files are no damage
    path = root / "outputs" / "teacher-1" / "test.safetensors"
    overwrite_outputs(path)
    assert main(["check", "--run", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"run", "damaged", "unrepairable", "repaired", "proved", "run_whole", "remaining",
                           "notes", "details"}  # the CLI's shape: only a new kind of damage
    assert [d["path"] for d in report["damaged"]] == ["outputs/teacher-1/test.safetensors"]
    assert set(report["damaged"][0]) == {"path", "problem"} and "no longer hash" in report["damaged"][0]["problem"]
    assert report["details"][0]["kind"] == "outputs" and report["details"][0]["repairable"]
    repaired = check_run(root, repair=True)
    assert repaired["proved"] and repaired["run_whole"] and not path.exists()
    assert [(r["path"], r["proved"]) for r in repaired["repaired"]] == [("outputs/teacher-1/test.safetensors", True)]
    assert "recomputes it" in repaired["repaired"][0]["action"]
    assert Experiment.open(root).evaluate() == first and check_run(root)["run_whole"]


def test_an_unreadable_outputs_file_is_damage_and_a_linked_outputs_folder_is_refused(evaluated, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(evaluated[0], root)
    (root / "outputs" / "purge-0" / "test.safetensors").write_bytes(b"not safetensors")
    assert [d["path"] for d in check_run(root)["damaged"]] == ["outputs/purge-0/test.safetensors"]
    outside = tmp_path / "outside"
    shutil.move(root / "outputs", outside)
    (root / "outputs").symlink_to(outside)
    report = check_run(root, repair=True)
    assert not report["run_whole"] and not report["repaired"]
    assert "outputs is a symbolic link" in report["unrepairable"][0]["problem"]
    assert (outside / "purge-0" / "test.safetensors").read_bytes() == b"not safetensors"  # nothing removed outside


def test_a_plan_edited_to_learn_a_forgotten_sample_again_is_refused_and_rebuilt(served, train_once, tiny_config,
                                                                               tmp_path):
    """Issue 28, defect 6: plan.json put back to the plan before the request (its samples not forgotten)."""
    from purge_engine.rundir.files import RunDamaged

    root = copy(served, tmp_path)
    store = RunStore(root)
    store.write_plan(train_once(tiny_config).plan)  # the plan as it was before any request
    with pytest.raises(RunDamaged, match=r"no longer forgets 2 samples .* --repair"):
        Experiment.open(root)
    report = check_run(root, repair=True)
    assert report["run_whole"] and report["proved"]
    again = Experiment.open(root)
    assert again.plan.forgotten == served.plan.forgotten
    costs = again.train()
    assert sum(c.steps_trained for c in costs.values()) == 0  # nothing was learned again


def test_evaluate_refuses_a_role_whose_final_checkpoint_is_gone_instead_of_dropping_it(served, tmp_path):
    """Issue 28, defect 7: a student method's final checkpoint deleted; evaluate used to report the other roles."""
    from purge_engine.rundir.files import RunDamaged

    root = copy(served, tmp_path)
    exp = Experiment.open(root)
    last = exp.job("baseline", 1).steps[-1].step
    exp.store.stem(CheckpointName("baseline", 1, last)).with_suffix(".json").unlink()
    with pytest.raises(RunDamaged, match=r"final checkpoints of Baseline .* --repair"):
        exp.evaluate()
    assert check_run(root, repair=True)["run_whole"]
    assert set(Experiment.open(root).evaluate()["accuracy"]) == {"teacher", "purge", "single_teacher", "baseline"}


def test_a_temp_file_safetensors_itself_left_is_listed_and_removed(served, tmp_path):
    """Issue 28, defect 7: safetensors writes `.tmpXXXXXX` beside its target and renames it; a kill between
    leaves it behind (as measured in 5 of 5 kills)."""
    root = copy(served, tmp_path)
    left = root / "checkpoints" / "teacher-0" / ".tmp82kY9V"
    left.write_bytes(b"half a tensor file")
    assert [d["path"] for d in check_run(root)["damaged"]] == ["checkpoints/teacher-0/.tmp82kY9V"]
    Experiment.open(root)
    assert not left.exists() and check_run(root)["run_whole"]


@pytest.mark.parametrize("kind", ["link to /dev/zero", "fifo"])
def test_a_plan_that_is_a_link_or_a_fifo_is_refused_with_a_sentence(served, tmp_path, kind):
    """Issue 28, defect 7: plan.json as a symbolic link to /dev/zero aborted with std::bad_alloc."""
    import os

    root = copy(served, tmp_path)
    (root / "plan.json").unlink()
    if kind == "fifo":
        os.mkfifo(root / "plan.json")
    else:
        (root / "plan.json").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"plan.json (is a symbolic link|is not a regular file)"):
        Experiment.open(root)
    assert not check_run(root)["run_whole"]
