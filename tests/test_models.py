"""models.py and seeding.py: every model on the datasets it fits (no BatchNorm), seeded init that leaves the
global RNG alone, seeds that follow seed, role and position."""

import pytest
import torch
from torch import nn

from purge_engine.datasets.sources import DATASETS
from purge_engine.datasets.specs import MODELS, model_fits
from purge_engine.models import build_model, count_parameters
from purge_engine.seeding import generator_for, seed_for

CASES = [(m, d) for m in MODELS for d in ("digits", "mnist-5k", "cifar10") if model_fits(m, DATASETS[d])]


@pytest.mark.parametrize("model,dataset", CASES)
def test_every_model_runs_on_the_datasets_it_fits_and_has_no_batchnorm(model, dataset):
    spec = DATASETS[dataset]
    net = build_model(model, spec, seed=1)
    out = net(torch.zeros(2, spec.channels, spec.height, spec.width))
    assert out.shape == (2, spec.n_classes)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def test_paper_mnist_cnn_shape():
    net = build_model("mnist-cnn", DATASETS["mnist-5k"], seed=0)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64] and convs[0].kernel_size == (3, 3)
    assert linears[0].out_features == 128


def test_same_seed_same_init_other_seed_other_init_and_global_rng_untouched():
    spec = DATASETS["digits"]
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("digits-cnn", spec, seed=7)
    assert torch.equal(torch.rand(1), before)  # the global RNG was not consumed
    b = build_model("digits-cnn", spec, seed=7)
    c = build_model("digits-cnn", spec, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))
    assert count_parameters(a) > 0


def test_a_model_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not take digits"):
        build_model("rgb-cnn", DATASETS["digits"], seed=0)


def test_seeds_depend_on_seed_role_and_position():
    assert seed_for(0, "teacher", 1, 2) == seed_for(0, "teacher", 1, 2)
    distinct = {seed_for(0, "teacher", 1, 2), seed_for(1, "teacher", 1, 2), seed_for(0, "student", 1, 2),
                seed_for(0, "teacher", 2, 1), seed_for(0, "teacher", 1, 2, 0)}
    assert len(distinct) == 5
    a = torch.randperm(50, generator=generator_for(0, "teacher", 3))
    b = torch.randperm(50, generator=generator_for(0, "teacher", 3))
    assert torch.equal(a, b)


def test_resnet18_pools_with_torchvisions_kernel_on_a_cpu():
    """The global pooling keeps a CPU run's bits (the same kernel as nn.AdaptiveAvgPool2d) and agrees
    with the plain mean a GPU run uses to rounding."""
    from purge_engine.models import GlobalAvgPool

    net = build_model("resnet18", DATASETS["cifar10"], seed=0)
    assert isinstance(net.avgpool, GlobalAvgPool)
    x = torch.randn(4, 512, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net.avgpool(x), nn.AdaptiveAvgPool2d((1, 1))(x))
    assert torch.allclose(net.avgpool(x), x.mean((2, 3), keepdim=True), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: none on this machine")
@pytest.mark.parametrize("model,dataset", CASES)
def test_every_model_trains_a_step_on_a_gpu_with_deterministic_algorithms(model, dataset):
    """A GPU run pins deterministic algorithms (run.py): no layer may be one PyTorch refuses under them."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as run.py sets it: cuBLAS refuses otherwise
    spec = DATASETS[dataset]
    net = build_model(model, spec, seed=1).cuda()
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        x = torch.randn(8, spec.channels, spec.height, spec.width, device="cuda")
        torch.nn.functional.cross_entropy(net(x), torch.zeros(8, dtype=torch.long, device="cuda")).backward()
    finally:
        torch.use_deterministic_algorithms(was)
    assert all(p.grad is not None for p in net.parameters())
