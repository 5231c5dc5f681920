"""The batched-constituents path (purge_engine.stacked): shapes, stacking round trip, determinism,
agreement with the one-at-a-time loop, and the switch. All on CPU; the CUDA check is a declared skip."""

import pytest
import torch

from purge_engine.data import load_dataset
from purge_engine.models import build_model
from purge_engine.stacked import choose_path, group_by_shape, stack_models, train_many, train_stacked, unstack
from purge_engine.training import student_loss, teacher_loss, train_slice_step

N_MODELS, N_SAMPLES, EPOCHS, BATCH, LR = 3, 48, 2, 16, 2e-3


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def fresh_models(bundle, count: int = N_MODELS) -> list[torch.nn.Module]:
    return [build_model("digits-cnn", bundle.spec, seed=100 + i) for i in range(count)]


def step_data(bundle, count: int = N_MODELS, n: int = N_SAMPLES):
    """Disjoint data per model, as constituents' shards are."""
    inputs = [bundle.train_x[i * n:(i + 1) * n] for i in range(count)]
    targets = [(bundle.train_y[i * n:(i + 1) * n],) for i in range(count)]
    positions = [(7, "teacher", i, 0) for i in range(count)]
    return inputs, targets, positions


def states(models) -> list[dict[str, torch.Tensor]]:
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]


# -- stacking ------------------------------------------------------------------------------------
def test_stacked_tensors_gain_a_leading_model_axis(digits):
    models = fresh_models(digits)
    params, buffers = stack_models(models)
    assert set(params) == {name for name, _ in models[0].named_parameters()}
    for name, tensor in models[0].named_parameters():
        assert params[name].shape == (N_MODELS, *tensor.shape)
        assert params[name].requires_grad and params[name].is_leaf
    assert buffers == {}  # no BatchNorm anywhere (section 6)


def test_unstacking_returns_each_models_own_parameters(digits):
    models = fresh_models(digits)
    before = states(models)
    params, buffers = stack_models(models)
    back = unstack({**params, **buffers})
    assert len(back) == N_MODELS
    for original, state in zip(before, back, strict=True):
        assert original.keys() == state.keys()
        assert all(torch.equal(original[k], state[k]) for k in original)
    plain = build_model("digits-cnn", digits.spec, seed=999)
    plain.load_state_dict(back[1])  # loadable by the plain model
    assert all(torch.equal(plain.state_dict()[k], before[1][k]) for k in before[1])


def test_models_of_different_shapes_are_refused(digits):
    mnist_like = build_model("mlp", digits.spec, seed=0)
    with pytest.raises(ValueError, match="same architecture"):
        stack_models([fresh_models(digits, 1)[0], mnist_like])


# -- training ------------------------------------------------------------------------------------------
def test_stacked_training_is_deterministic(digits):
    inputs, targets, positions = step_data(digits)
    runs = []
    for _ in range(2):
        models = fresh_models(digits)
        train_stacked(models, inputs, targets, teacher_loss, EPOCHS, BATCH, LR, positions)
        runs.append(states(models))
    for first, second in zip(*runs, strict=True):
        assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("loss_name", ["teacher", "student"])
@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # vmap's kl_div fallback: slow, exact
def test_stacked_training_matches_the_loop_to_rounding(digits, loss_name):
    """Close, not equal: vmap batches the M convolutions and matrix products into other kernels
    whose summation order differs, so results agree to float32 rounding, not bit for bit."""
    inputs, targets, positions = step_data(digits)
    loss_fn = teacher_loss
    if loss_name == "student":
        soft = [torch.softmax(torch.randn(N_SAMPLES, 10, generator=torch.Generator().manual_seed(i)), 1)
                for i in range(N_MODELS)]
        targets = [(s, t[0]) for s, t in zip(soft, targets, strict=True)]
        loss_fn = student_loss(temperature=2.0, alpha=0.5)
    stacked, loop = fresh_models(digits), fresh_models(digits)
    stacked_losses = train_stacked(stacked, inputs, targets, loss_fn, EPOCHS, BATCH, LR, positions)
    loop_losses = [train_slice_step(m, x, t, loss_fn, EPOCHS, BATCH, LR, p)
                   for m, x, t, p in zip(loop, inputs, targets, positions, strict=True)]
    assert stacked_losses == pytest.approx(loop_losses, rel=1e-4)
    for a, b in zip(states(stacked), states(loop), strict=True):
        for name in a:
            # rounding differences compound over the Adam steps: 1 of 131,072 weights drifted 2.3e-4
            torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-3)
    changed = states(fresh_models(digits))[0]
    assert not torch.equal(changed["0.weight"], states(stacked)[0]["0.weight"])  # it did train


def test_an_empty_step_trains_nothing(digits):
    models = fresh_models(digits, 2)
    before = states(models)
    empty = [digits.train_x[:0]] * 2
    losses = train_stacked(models, empty, [(digits.train_y[:0],)] * 2, teacher_loss, 1, BATCH, LR,
                           [(0, "teacher", 0, 0), (0, "teacher", 1, 0)])
    assert losses == [None, None]
    assert all(torch.equal(before[0][k], models[0].state_dict()[k]) for k in before[0])


def test_unequal_step_sizes_are_refused_by_train_stacked(digits):
    inputs, targets, positions = step_data(digits, 2)
    with pytest.raises(ValueError, match="equal sample counts"):
        train_stacked(fresh_models(digits, 2), [inputs[0], inputs[1][:10]], targets, teacher_loss, 1, BATCH, LR,
                      positions)


# -- the switch -------------------------------------------------------------------------------------------
def test_the_switch_picks_the_path():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_path("auto", cpu, 4) == "loop"  # vmap is slower on CPU (section 10)
    assert choose_path("auto", cuda, 4) == "stacked"
    assert choose_path("auto", cuda, 1) == "loop"
    assert choose_path("stacked", cpu, 4) == "stacked"
    assert choose_path("loop", cuda, 4) == "loop"
    with pytest.raises(ValueError, match="path"):
        choose_path("grouped", cpu, 2)


def test_group_by_shape_keeps_equal_shapes_together():
    assert group_by_shape([10, 12, 10, 10], [2, 2, 2, 1]) == [[0, 2], [1], [3]]


def test_train_many_loop_path_is_the_engine_loop_bit_for_bit(digits):
    inputs, targets, positions = step_data(digits)
    via_switch, reference = fresh_models(digits), fresh_models(digits)
    path, _ = train_many(via_switch, inputs, targets, teacher_loss, [EPOCHS] * N_MODELS, BATCH, LR, positions,
                         path="loop")
    for m, x, t, p in zip(reference, inputs, targets, positions, strict=True):
        train_slice_step(m, x, t, teacher_loss, EPOCHS, BATCH, LR, p)
    assert path == "loop"
    for a, b in zip(states(via_switch), states(reference), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_many_stacked_path_groups_unequal_steps(digits):
    inputs, targets, positions = step_data(digits)
    inputs[2], targets[2] = inputs[2][:20], (targets[2][0][:20],)  # a third model with a smaller step
    grouped, alone = fresh_models(digits), fresh_models(digits)
    path, losses = train_many(grouped, inputs, targets, teacher_loss, [EPOCHS] * N_MODELS, BATCH, LR, positions,
                              path="stacked")
    train_stacked(alone[:2], inputs[:2], targets[:2], teacher_loss, EPOCHS, BATCH, LR, positions[:2])
    train_stacked(alone[2:], inputs[2:], targets[2:], teacher_loss, EPOCHS, BATCH, LR, positions[2:])
    assert path == "stacked" and all(loss is not None for loss in losses)
    for a, b in zip(states(grouped), states(alone), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; the CPU tests above cover the logic")
def test_stacked_on_cuda_is_deterministic_and_close_to_the_loop(digits, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as Experiment sets it on CUDA
    torch.use_deterministic_algorithms(True)
    try:
        _check_cuda_path(digits)
    finally:
        torch.use_deterministic_algorithms(False)


def _check_cuda_path(digits) -> None:
    device = torch.device("cuda")
    inputs, targets, positions = step_data(digits)
    inputs = [x.to(device) for x in inputs]
    targets = [tuple(t.to(device) for t in ts) for ts in targets]
    runs = []
    for _ in range(2):
        models = [m.to(device) for m in fresh_models(digits)]
        train_stacked(models, inputs, targets, teacher_loss, EPOCHS, BATCH, LR, positions)
        runs.append(states(models))
    loop = [m.to(device) for m in fresh_models(digits)]
    for m, x, t, p in zip(loop, inputs, targets, positions, strict=True):
        train_slice_step(m, x, t, teacher_loss, EPOCHS, BATCH, LR, p)
    for first, second, reference in zip(*runs, states(loop), strict=True):
        assert all(torch.equal(first[k], second[k]) for k in first)
        for k in first:
            torch.testing.assert_close(first[k], reference[k], rtol=1e-3, atol=1e-4)
