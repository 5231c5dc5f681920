"""The user's own data (userdata.py): good .npz, image folder and CSV files import, train and forget
exactly; bad ones are refused with a sentence naming what is wrong, and nothing is stored."""

import csv
import io
import json
import os
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from purge_engine.cli import main
from purge_engine.datasets import userdata
from purge_engine.datasets.readers import load_dataset
from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.userdata import DatasetRefused, read_user_dataset
from purge_engine.experiment import Experiment

TINY = ["--teachers", "2", "--students", "1", "--teacher-slices", "1", "--student-slices", "1", "--epochs", "1",
        "--batch-size", "32", "--student-fraction", "0.3"]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs folder whose datasets/ is where imports go, holding one file so that a snapshot is never empty."""
    root = tmp_path / "runs"
    root.mkdir()
    (root / "keep.txt").write_text("untouched")
    monkeypatch.setenv(userdata.DATASETS_DIR_ENV, str(root / "datasets"))
    return root


def tree(root):
    """Every path under root (folders too, so an empty folder left behind counts) with its bytes."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def labels(n, k=3):
    return np.arange(n) % k


def image_npz(path, n=90, shape=(1, 6, 6), dtype=np.uint8, **extra):
    rng = np.random.default_rng(0)
    y = labels(n)
    x = (rng.random((n, *shape)) * 100 + y.reshape(-1, *[1] * len(shape)) * 60).astype(dtype)
    np.savez(path, x=x, y=y, **extra)
    return path


def image_folder(root, classes=("cat", "dog"), n=8, size=(6, 5), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(1)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            pixels = (rng.random(shape) * 120 + 100 * k).astype(np.uint8)
            Image.fromarray(pixels, mode).save(root / name / f"{i:02d}.png")
    return root


def text_csv(path, rows=None, header=("text", "label")):
    words = {"good": "a fine warm funny film", "bad": "a dull cold tedious mess"}
    rows = rows if rows is not None else [(f"{words[c]} number {i}", c) for i in range(30) for c in words]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- good files ----------------------------------------------------------------------------------------
def test_an_image_npz_imports_with_fixed_constants_and_a_content_name(runs, tmp_path):
    path = image_npz(tmp_path / "faces.npz", classes=np.array(["a", "b", "c"]))
    name = userdata.import_dataset(path)
    spec = DATASETS[name]
    assert name.startswith("user:") and len(name) == len("user:") + userdata.HASH_DIGITS
    assert (spec.input_shape, spec.n_classes, spec.teacher_model) == ((1, 6, 6), 3, "mlp")
    assert spec.n_train + spec.n_test == 90 and spec.n_test > 0
    bundle = load_dataset(name, memory_format="contiguous")
    assert bundle.class_names == ("a", "b", "c")
    raw = userdata.load(name).arrays["train_x"]
    expected = (raw.astype(np.float32) / 255 - 0.5) / 0.5  # per sample, fixed constants
    assert np.array_equal(bundle.train_x.numpy(), expected)
    copy = tmp_path / "renamed.npz"
    copy.write_bytes(path.read_bytes())
    assert userdata.import_dataset(copy) == name  # the same bytes are the same dataset, stored once
    assert [r["name"] for r in userdata.imported()] == [name]


def test_a_flat_float_npz_is_taken_as_given_and_gets_the_mlp(runs, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 7)).astype(np.float64)
    np.savez(tmp_path / "table.npz", x=x, y=labels(60, 2))
    name = userdata.import_dataset(tmp_path / "table.npz")
    spec = DATASETS[name]
    assert (spec.input_shape, spec.teacher_model, spec.n_classes) == ((1, 1, 7), "mlp", 2)
    bundle = load_dataset(name)
    test = np.array([userdata._is_test(x.astype(np.float32).reshape(60, 1, 1, 7), i, "image") for i in range(60)])
    assert np.array_equal(bundle.train_x.reshape(-1, 7).numpy(), x[~test].astype(np.float32))


def test_one_channel_images_without_a_channel_axis_and_integer_csv_labels_import(runs, tmp_path):
    np.savez(tmp_path / "nhw.npz", x=np.arange(40 * 25, dtype=np.uint8).reshape(40, 5, 5), y=labels(40, 2))
    assert DATASETS[userdata.import_dataset(tmp_path / "nhw.npz")].input_shape == (1, 5, 5)
    rows = [(f"film {i} was {'fine' if i % 2 else 'dull'}", str(i % 2)) for i in range(40)]
    name = userdata.import_dataset(text_csv(tmp_path / "ints.csv", rows=rows))
    assert load_dataset(name).class_names == ("0", "1")


def test_an_image_folder_imports_class_by_class(runs, tmp_path):
    name = userdata.import_dataset(image_folder(tmp_path / "pets", classes=("cat", "dog", "eel")))
    spec, bundle = DATASETS[name], load_dataset(name)
    assert spec.input_shape == (1, 5, 6) and bundle.class_names == ("cat", "dog", "eel")
    assert spec.n_train + spec.n_test == 24
    colour = userdata.import_dataset(image_folder(tmp_path / "rgb", mode="RGB"))
    assert DATASETS[colour].input_shape == (3, 5, 6)


def test_a_csv_of_text_and_label_imports_as_hashed_tokens(runs, tmp_path):
    name = userdata.import_dataset(text_csv(tmp_path / "reviews.csv"))
    spec, bundle = DATASETS[name], load_dataset(name)
    assert (spec.modality, spec.teacher_model, bundle.class_names) == ("text", "text-bag", ("bad", "good"))
    assert bundle.train_x.dtype.is_floating_point is False and bundle.train_x.shape[1] == spec.width
    assert len(bundle.texts) == spec.n_train and bundle.sample_texts([0])[0].startswith("a ")


def test_train_then_forget_verify_on_an_imported_npz_is_exact(runs, tmp_path, capsys):
    path = image_npz(tmp_path / "faces.npz")
    run = runs / "faces-run"
    assert main(["train", "--dataset", str(path), "--run", str(run), "--json", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    name = config["dataset"]
    assert name.startswith("user:") and (runs / "datasets" / name[len("user:"):] / "dataset.json").is_file()
    capsys.readouterr()
    assert main(["forget", "--run", str(run), "--samples", "0,7", "--verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verification"]["exact"] is True
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["datasets"]}
    assert rows[name]["imported"] and rows[name]["available"] and rows[name]["shape"] == [1, 6, 6]


def test_a_run_does_not_reopen_on_changed_dataset_bytes(runs, tmp_path, capsys):
    path = image_npz(tmp_path / "faces.npz")
    run = runs / "faces-run"
    assert main(["train", "--dataset", str(path), "--run", str(run), "--json", *TINY]) == 0
    name = json.loads((run / "config.json").read_text())["dataset"]
    stored = runs / "datasets" / name[len("user:"):] / "train_x.npy"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01  # one pixel of the last sample, one bit
    stored.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="changed since it was imported"):
        Experiment.open(run)
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "changed since it was imported" in capsys.readouterr().err


# -- bad files: each refused with what is wrong, nothing stored -------------------------------------------
def _npz(**arrays):
    def write(path):
        np.savez(path / "bad.npz", **arrays)
        return path / "bad.npz"
    return write


def _nan(path):
    x = np.ones((40, 1, 4, 4), dtype=np.float32)
    x[5, 0, 1, 1] = np.nan
    return _npz(x=x, y=labels(40))(path)


def _huge(path):
    with open(path / "huge.npz", "wb") as handle:  # sparse: 300 MiB on paper, no disk used
        handle.truncate(300 * 2**20)
    return path / "huge.npz"


def _not_an_image(path):
    folder = image_folder(path / "pets")
    (folder / "dog" / "notes.txt").write_text("not a picture")
    return folder


def _sizes_differ(path):
    folder = image_folder(path / "pets")
    from PIL import Image

    Image.fromarray(np.zeros((9, 9), dtype=np.uint8), "L").save(folder / "cat" / "zz.png")
    return folder


def _empty_class_folder(path):
    folder = image_folder(path / "pets")
    (folder / "owl").mkdir()
    return folder


def _garbage(path):
    (path / "bad.npz").write_bytes(b"this is not a zip archive at all")
    return path / "bad.npz"


BAD = {
    "x with a wrong shape": (_npz(x=np.zeros(40, np.uint8), y=labels(40)), ["x has shape (40,)", "(N, C, H, W)"]),
    "x channels-last": (_npz(x=np.zeros((40, 6, 6, 1), np.uint8), y=labels(40)), ["6 channels", "transpose"]),
    "NaN in x": (_nan, ["NaN", "row 5", "must be finite"]),
    "label out of range": (_npz(x=np.zeros((40, 4), np.float32), y=labels(40) - 1), ["label -1", "[0, 999]"]),
    "empty class": (_npz(x=np.zeros((40, 4), np.float32), y=np.where(labels(40) == 1, 3, labels(40))),
                    ["class '1' (label 1) has 0 sample(s)", "at least 2"]),
    "lengths differ": (_npz(x=np.zeros((40, 4), np.float32), y=labels(39)), ["x holds 40 samples but y 39 labels"]),
    "x of integers": (_npz(x=np.zeros((40, 4), np.int64), y=labels(40)), ["dtype int64", "uint8", "float32"]),
    "y of floats": (_npz(x=np.zeros((40, 4), np.float32), y=labels(40).astype(float)), ["y has", "float64",
                                                                                         "(N,) integers"]),
    "x of objects (a pickle)": (_npz(x=np.full((40, 4), None, dtype=object), y=labels(40)),
                                ["x has dtype object", "never loaded"]),
    "x under another name": (_npz(X=np.zeros((40, 4), np.float32), y=labels(40)), ["holds arrays X, y",
                                                                                    "must hold x and y"]),
    "not a zip": (_garbage, ["not a .npz archive (no zip structure)", "np.savez"]),
    "a huge file": (_huge, ["314,572,800 bytes", "at most 268,435,456 bytes"]),
    "a non-image in an image folder": (_not_an_image, ["dog/notes.txt is not an image"]),
    "images of different sizes": (_sizes_differ, ["cat/zz.png is 9x9", "same size"]),
    "an empty class folder": (_empty_class_folder, ["class 'owl' (label 2) has 0 sample(s)"]),
    "a CSV without a label column": (lambda p: text_csv(p / "bad.csv", header=("text", "sentiment")),
                                     ["'text', 'sentiment'", "a 'label' column"]),
    "a CSV row without text": (lambda p: text_csv(p / "bad.csv", rows=[("fine film", "good")] * 9 + [("", "bad")]),
                               ["line 11", "no words"]),
    "a CSV label out of range": (lambda p: text_csv(p / "bad.csv", rows=[(f"film {i}", str(i % 2 - 1))
                                                                         for i in range(9)]),
                                 ["label -1", "[0, 999]"]),
    "a file of another kind": (lambda p: (p / "data.txt").write_text("1,2") and p / "data.txt", ["a .txt file"]),
    "a path that is not there": (lambda p: p / "missing.npz", ["no such file or folder"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_upload_is_refused_naming_the_problem_with_nothing_stored(case, runs, tmp_path, capsys):
    make, phrases = BAD[case]
    source = tmp_path / "upload"
    source.mkdir()
    path = make(source)
    before = tree(runs)
    with pytest.raises(DatasetRefused) as refused:  # what the Setup page's upload calls
        read_user_dataset(path)
    for phrase in phrases:
        assert phrase in str(refused.value)
    assert main(["train", "--dataset", str(path), "--run", str(runs / "r"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset: ") and "nothing was stored" in err
    assert all(phrase in err for phrase in phrases)
    assert tree(runs) == before


def test_a_layout_too_big_for_the_file_is_refused_before_anything_is_stored(runs, tmp_path, capsys):
    path = image_npz(tmp_path / "faces.npz")
    before = tree(runs)
    assert main(["train", "--dataset", str(path), "--run", str(runs / "r"), *TINY, "--teachers", "200"]) == 2
    assert "n_teachers x teacher_slices" in capsys.readouterr().err
    assert main(["plan", "--dataset", str(path), "--teachers", "4", "--students", "2"]) == 0  # plan stores nothing
    assert tree(runs) == before


# -- uploads (the Setup page): the same checks on what a browser sends -------------------------------------
def as_upload(path):
    """What Streamlit hands over: one file by its name, or a folder's files by their path inside it."""
    if path.is_dir():
        return [(f"{path.name}/{p.relative_to(path).as_posix()}", p.read_bytes())
                for p in sorted(path.rglob("*")) if p.is_file()]
    return [(path.name, path.read_bytes())]


def test_uploads_of_a_file_and_of_a_folder_import_like_paths(runs, tmp_path):
    npz = image_npz(tmp_path / "faces.npz")
    assert userdata.import_uploads(as_upload(npz)) == userdata.import_dataset(npz)
    name = userdata.import_uploads(as_upload(image_folder(tmp_path / "pets")))
    assert DATASETS[name].title.startswith("pets (your data, folder") and DATASETS[name].n_classes == 2
    assert userdata.import_uploads(as_upload(text_csv(tmp_path / "r.csv"))).startswith("user:")


# The browser sends no empty folder and the huge file is tested by size alone (below); the rest as uploads.
UPLOADABLE = [case for case in BAD if case not in ("an empty class folder", "a huge file", "a path that is not there")]


@pytest.mark.parametrize("case", UPLOADABLE)
def test_a_bad_upload_from_the_page_is_refused_the_same_way(case, runs, tmp_path):
    make, phrases = BAD[case]
    source = tmp_path / "upload"
    source.mkdir()
    files = as_upload(make(source))
    before = tree(runs)
    with pytest.raises(DatasetRefused) as refused:
        userdata.import_uploads(files)
    assert all(phrase in str(refused.value) for phrase in phrases), str(refused.value)
    assert tree(runs) == before


def test_an_upload_over_the_size_limit_or_outside_a_folder_is_refused(runs, tmp_path):
    files = as_upload(image_npz(tmp_path / "faces.npz"))
    with pytest.raises(DatasetRefused, match="must be at most 1,000 bytes"):
        userdata.import_uploads(files, max_bytes=1000)
    with pytest.raises(DatasetRefused, match="outside a folder"):
        userdata.import_uploads([("../escape/x.png", b"")] * 2)
    assert not (runs / "datasets").exists()


def test_a_run_whose_imported_dataset_is_gone_says_how_to_get_it_back(runs, tmp_path):
    import shutil

    path = image_npz(tmp_path / "faces.npz")
    run = runs / "faces-run"
    assert main(["train", "--dataset", str(path), "--run", str(run), "--json", *TINY]) == 0
    shutil.rmtree(runs / "datasets")
    with pytest.raises(ValueError, match="is not stored.*import faces.npz again"):
        Experiment.open(run)
    assert userdata.import_dataset(path) and Experiment.open(run).plan.n_pool > 0  # the same bytes: the same name


# -- hostile files (issue 28): refused on what their headers declare, before that memory is taken -----------
PEAK = 64 * 2**20  # what reading one may hold at most, numpy's arrays included (tracemalloc counts them)


def png_header(path, width, height, colour=0):
    """A PNG of a few dozen bytes whose header declares width x height (colour 0: grey, 2: RGB)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def header_only_npz(path, **arrays):
    """An .npz whose members are .npy headers alone: {key: (shape, descr)} declared, no data written."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, (shape, descr) in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array_header_2_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
            archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def _declaring(width, height):
    def make(path):
        return png_header(image_folder(path / "pets") / "cat" / "zz.png", width, height).parent.parent
    return make


def _one_rgb_among_grey(path):
    """5,461 grey 128x128 images (hard links of one) and one RGB: as RGB, one value more than MAX_VALUES."""
    from PIL import Image

    for name in ("cat", "dog"):
        (path / "pets" / name).mkdir(parents=True)
    first = path / "pets" / "cat" / "0000.png"
    Image.fromarray(np.zeros((128, 128), np.uint8), "L").save(first)
    for i in range(1, 5461):
        os.link(first, first.with_name(f"{i:04d}.png"))
    Image.fromarray(np.zeros((128, 128, 3), np.uint8), "RGB").save(path / "pets" / "dog" / "0000.png")
    return path / "pets"


def _npz_declaring(shape, descr, **extra):
    return lambda path: header_only_npz(path / "big.npz", x=(shape, descr), y=((shape[0],), "<i8"), **extra)


def _npz_header_of(length):
    def make(path):
        with zipfile.ZipFile(path / "big.npz", "w") as archive:
            archive.writestr("x.npy", b"\x93NUMPY\x02\x00" + length.to_bytes(4, "little") + b"{")
            archive.writestr("y.npy", b"")
        return path / "big.npz"
    return make


def _many_members(path):
    with zipfile.ZipFile(path / "big.npz", "w") as archive:
        for i in range(3000):
            archive.writestr(f"m{i}.npy", b"")
    return path / "big.npz"


def _rows(n):
    def make(path):
        (path / "big.csv").write_text("text,label\n" + "a good film,0\n" * n)
        return path / "big.csv"
    return make


def _linked_image(path):
    folder = image_folder(path / "pets")
    (folder / "cat" / "zz.png").symlink_to(folder / "dog" / "00.png")
    return folder


def _linked_class(path):
    folder = image_folder(path / "pets")
    (folder / "owl").symlink_to(folder / "dog", target_is_directory=True)
    return folder


HOSTILE = {  # case: (make, phrases, limits patched for the case)
    "a PNG declaring 100000x100000": (_declaring(100_000, 100_000), ["cat/zz.png", "at most 128 on a side"], {}),
    "a PNG declaring 4096x4096": (_declaring(4096, 4096), ["cat/zz.png is 4096x4096", "at most 128 on a side"], {}),
    "one RGB image among 5,461 grey": (_one_rgb_among_grey, ["(RGB): 5,462 samples of 3x128x128",
                                                             "268,468,224 values", "at most 268,435,456"], {}),
    "an npz at the value limit as float64": (_npz_declaring((1_000_000, 1, 16, 16), "<f8"),
                                             ["take 4,096,000,000 bytes", "at most 1,073,741,824"], {}),
    "an npz of too many values": (_npz_declaring((1_000_000, 3, 16, 16), "|u1"), ["768,000,000 values",
                                                                                   "at most 268,435,456"], {}),
    "an npz of huge images": (_npz_declaring((10, 3, 100_000, 100_000), "|u1"), ["100000x100000 pixels",
                                                                                  "at most 128 on a side"], {}),
    "an npz of long vectors": (_npz_declaring((10, 10**7), "<f4"), ["10,000,000 values per sample",
                                                                     "at most 65,536"], {}),
    "an npz of huge class names": (_npz_declaring((10, 4), "<f4", classes=((2,), "<U1000000")),
                                   ["classes has shape (2,)", "at most 1000 characters"], {}),
    "an npz with a 4 GiB header": (_npz_header_of(2**32 - 1), ["a header of 4,294,967,295 bytes", "10,000"], {}),
    "an npz of 3,000 members": (_many_members, ["a zip directory of", "at most 65,536 bytes"], {}),
    "a CSV of a million rows": (_rows(1_000_000), ["more than 1,000 rows", "at most 1,000"], {"MAX_SAMPLES": 1000}),
    "a CSV of one 40 MB record": (lambda p: (p / "big.csv").write_text("text,label\n" + "a," * 20_000_000)
                                  and p / "big.csv", ["line 2: a record of more than 1,000,000 characters"], {}),
    "a link inside a class folder": (_linked_image, ["cat/zz.png cannot be read (a symbolic link"], {}),
    "a linked class folder": (_linked_class, ["'owl' is a symbolic link"], {}),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_is_refused_before_it_takes_the_memory_it_declares(case, runs, tmp_path, monkeypatch):
    make, phrases, limits = HOSTILE[case]
    for name, value in limits.items():
        monkeypatch.setattr(userdata, name, value)
    path = make(tmp_path)
    before = tree(runs)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetRefused) as refused:
            read_user_dataset(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(phrase in str(refused.value) for phrase in phrases), str(refused.value)
    assert peak < PEAK, f"{peak:,} bytes held"
    assert tree(runs) == before


def _refusal_within(path, seconds=10.0) -> str:
    """read_user_dataset(path)'s refusal, run in a thread: a read that blocks fails the test, never hangs it."""
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_refusal(path)), daemon=True)
    start = time.monotonic()
    reader.start()
    reader.join(seconds)
    if reader.is_alive():  # unblock the reader (a writer opens the FIFO), then fail
        os.close(os.open(path if path.suffix else path / "cat" / "zz.png", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"reading {path} still blocked after {time.monotonic() - start:.0f} s")
    return outcome[0]


def _refusal(path) -> str:
    try:
        read_user_dataset(path)
    except DatasetRefused as refused:
        return str(refused)
    return "imported"


def test_a_fifo_named_like_an_image_or_a_csv_is_refused_at_once(runs, tmp_path):
    folder = image_folder(tmp_path / "pets")
    os.mkfifo(folder / "cat" / "zz.png")
    assert "cat/zz.png cannot be read (a FIFO" in _refusal_within(folder)
    os.mkfifo(tmp_path / "data.csv")
    assert "cannot be read (a FIFO" in _refusal_within(tmp_path / "data.csv")
