"""Model factory: constituent architectures by name (names and input limits in specs.MODELS).

No BatchNorm anywhere: running statistics would depend on batch composition across
slices and break the exactness contract (DESIGN section 6). ResNet-18 uses GroupNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from purge_engine.datasets.specs import MODELS, DatasetSpec, model_fits


def _digits_cnn(spec: DatasetSpec) -> nn.Module:
    # 1x8x8 -> 32x8x8 -> 64x4x4 -> fc 128 -> classes
    return nn.Sequential(
        nn.Conv2d(spec.channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, spec.n_classes),
    )


def _mnist_cnn(spec: DatasetSpec) -> nn.Module:
    # The paper's MNIST CNN: Cx28x28 -> 32x26x26 -> 64x24x24 -> pool 64x12x12 -> fc 128 -> classes
    return nn.Sequential(
        nn.Conv2d(spec.channels, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Linear(128, spec.n_classes),
    )


def _rgb_cnn(spec: DatasetSpec) -> nn.Module:
    # Cx32x32 -> 32x16x16 -> 64x8x8 -> 128x4x4 -> fc 256 -> classes
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(spec.channels, 32), *block(32, 64), *block(64, 128),
        nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, spec.n_classes),
    )


class GlobalAvgPool(nn.Module):
    """Global average pooling, as torchvision's nn.AdaptiveAvgPool2d((1, 1)): on a CPU that very kernel
    (so the same bits as before); on CUDA a plain mean over height and width, because PyTorch has no
    deterministic backward for adaptive_avg_pool2d there and a GPU run trains with deterministic
    algorithms on (run.py), where that kernel raises instead of training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True) if x.is_cuda else F.adaptive_avg_pool2d(x, 1)


def _resnet18(spec: DatasetSpec) -> nn.Module:
    from torchvision.models import resnet18  # deferred: no work at import

    model = resnet18(num_classes=spec.n_classes, norm_layer=lambda c: nn.GroupNorm(min(32, c), c))
    # CIFAR stem: 3x3 stride-1 conv and no max-pool, the usual change for 32x32 inputs.
    model.conv1 = nn.Conv2d(spec.channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.avgpool = GlobalAvgPool()
    return model


def _mlp(spec: DatasetSpec) -> nn.Module:
    n_in = spec.channels * spec.height * spec.width
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 256), nn.ReLU(), nn.Linear(256, spec.n_classes))


TEXT_DIM = 16  # embedding width of TextBag: small, so a checkpoint of 2**14 buckets is about 1 MB
TEXT_INIT_STD = 0.01


class TextBag(nn.Module):
    """fastText's shape: token ids (n, L) -> mean of their embeddings, padding (id 0) left out -> linear.

    An nn.Embedding with a masked mean rather than nn.EmbeddingBag: the same function, and plain
    indexing and sums batch under vmap (the lanes executor, lanes.py) and run the same kernels everywhere.
    """

    def __init__(self, spec: DatasetSpec, dim: int = TEXT_DIM):
        super().__init__()
        self.embed = nn.Embedding(spec.buckets, dim, padding_idx=0)
        self.out = nn.Linear(dim, spec.n_classes)
        # Small initial vectors (fastText starts near zero too): a word a teacher never sees then adds
        # almost nothing, where N(0, 1) vectors add noise (0.69 against 0.72 ensemble accuracy, 8 teachers).
        with torch.no_grad():
            self.embed.weight.normal_(0.0, TEXT_INIT_STD)
            self.embed.weight[0].zero_()  # the padding row

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        held = (ids != 0).unsqueeze(-1).to(self.embed.weight.dtype)  # (n, L, 1)
        total = (self.embed(ids) * held).sum(1)  # (n, dim)
        return self.out(total / held.sum(1).clamp(min=1))


def _text_bag(spec: DatasetSpec) -> nn.Module:
    return TextBag(spec)


_BUILDERS = {
    "digits-cnn": _digits_cnn,
    "mnist-cnn": _mnist_cnn,
    "rgb-cnn": _rgb_cnn,
    "resnet18": _resnet18,
    "mlp": _mlp,
    "text-bag": _text_bag,
}
assert set(_BUILDERS) == set(MODELS), "every model in specs.MODELS needs a builder"


def build_model(name: str, spec: DatasetSpec, seed: int) -> nn.Module:
    """A freshly initialised model; the same (name, spec, seed) gives the same parameters.

    PyTorch's default initialisers read the global RNG, so they run inside a forked RNG
    seeded with `seed` (from seeding.seed_for) and leave the caller's RNG untouched.
    """
    if name not in _BUILDERS:
        raise ValueError(f"model: got {name!r}, must be one of {', '.join(_BUILDERS)}")
    if not model_fits(name, spec):
        raise ValueError(f"model: {name!r} does not take {spec.name}'s {spec.shape_text} inputs")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[name](spec)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
