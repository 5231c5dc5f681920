"""Several same-architecture constituents trained at once: the GPU path (DESIGN section 10).

On a GPU one small CNN leaves most of the device idle; stacking M constituents' parameters
(torch.func.stack_module_state) and running the model under torch.func.vmap trains all M in
one set of kernels. On 2 CPU cores it is slower than the plain loop, so the engine's default
stays the loop and this path is chosen by a switch (`choose_path`).

What each constituent sees is exactly what `training.train_slice_step` would give it: its own
seeded batch order generator_for(*rng_position, epoch), the same batch size, the same loss, and
Adam with the same hyper-parameters. One Adam over the stacked tensors equals M independent
Adams because Adam is elementwise and the loss is the SUM of per-model mean losses, so model
i's gradient is the gradient of its own loss alone.

Exactness contract, within this path: training the same constituents stacked twice gives
bitwise-equal parameters (fixed device, threads and kernels). Against the one-at-a-time loop the
results agree only to rounding: vmap turns M convolutions and matrix products into batched
kernels whose summation order differs, so a stacked run is never compared bitwise with a loop run.

Equal sizes: vmap needs every constituent's step to hold the same number of samples (the same
number of batches per epoch) and the same epochs. `group_by_shape` batches equal-size steps and
leaves the rest to separate groups. Padding with a mask was rejected: a padded model would still
take Adam steps (its moment estimates keep moving it), so it would not equal its unpadded self.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from purge_engine.seeding import generator_for
from purge_engine.training import train_slice_step

PATHS = ("auto", "loop", "stacked")

Targets = tuple[torch.Tensor, ...]


# -- the switch ---------------------------------------------------------------------------------
def choose_path(requested: str, device: torch.device, n_models: int) -> str:
    """'loop' or 'stacked'. 'auto' stacks only on CUDA and only when there are two or more
    models: on CPU batching models with vmap is slower than the plain loop (section 10)."""
    if requested not in PATHS:
        raise ValueError(f"path: got {requested!r}, must be one of {', '.join(PATHS)}")
    if requested != "auto":
        return requested
    return "stacked" if device.type == "cuda" and n_models > 1 else "loop"


def group_by_shape(sizes: Sequence[int], epochs: Sequence[int]) -> list[list[int]]:
    """Indices of the jobs that can be stacked together: equal sample count and equal epochs.
    Groups keep the jobs' order; a job with a unique shape forms a group of one."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, shape in enumerate(zip(sizes, epochs, strict=True)):
        groups.setdefault(shape, []).append(index)
    return list(groups.values())


# -- stacking and unstacking parameters ---------------------------------------------------------
def stack_models(models: Sequence[nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(params, buffers) with a leading model axis: each tensor (M, *shape of the one-model tensor).
    The stacked params are new leaf tensors that require grad; the models are not touched."""
    if not models:
        raise ValueError("models: got none, need at least one model to stack")
    names = [type(m).__name__ + str([tuple(p.shape) for p in m.parameters()]) for m in models]
    if len(set(names)) != 1:
        raise ValueError("models: every stacked model must have the same architecture and parameter shapes")
    return stack_module_state(list(models))


def unstack(stacked: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The inverse of stacking: one state dict per model, each tensor detached and cloned, so it
    loads into the plain model with load_state_dict and shares no memory with the stack."""
    count = next(iter(stacked.values())).shape[0]
    return [{name: tensor[i].detach().clone() for name, tensor in stacked.items()} for i in range(count)]


def load_unstacked(models: Sequence[nn.Module], params: dict[str, torch.Tensor],
                   buffers: dict[str, torch.Tensor]) -> None:
    """Write stacked (params, buffers) back into the plain models, in place."""
    for model, state in zip(models, unstack({**params, **buffers}), strict=True):
        model.load_state_dict(state)


# -- the batched loss ------------------------------------------------------------------------------
def batched_loss(template: nn.Module, loss_fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """f(params, buffers, x, *targets) -> (M,) per-model mean losses, with x (M, b, C, H, W) and each
    target (M, b, ...): the template's forward run under vmap with each model's own parameters."""
    def one_model(params, buffers, x, *targets):
        return loss_fn(functional_call(template, (params, buffers), (x,)), *targets)

    return vmap(one_model)


def _batch_orders(n: int, rng_positions: Sequence[tuple], epoch: int, device: torch.device) -> torch.Tensor:
    """(M, n) sample orders: row i is exactly the randperm train_slice_step draws for model i."""
    return torch.stack([torch.randperm(n, generator=generator_for(*p, epoch)) for p in rng_positions]).to(device)


def _gather(stacked: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """stacked (M, n, ...) and index (M, b) -> (M, b, ...): row i takes its own samples."""
    rows = torch.arange(stacked.shape[0], device=stacked.device).unsqueeze(1)
    return stacked[rows, index]


# -- training ------------------------------------------------------------------------------------------
def train_stacked(models: Sequence[nn.Module], inputs: Sequence[torch.Tensor], targets: Sequence[Targets],
                  loss_fn, epochs: int, batch_size: int, lr: float,
                  rng_positions: Sequence[tuple]) -> list[float | None]:
    """Train M same-architecture models at once, each on its own (inputs, targets), in place.

    inputs: M tensors (n, C, H, W) with the same n; targets: M tuples of tensors indexed like the
    inputs; rng_positions: M positions for generator_for, as train_slice_step takes them.
    Returns each model's mean loss over its last epoch (None when n is 0), like train_slice_step.
    """
    sizes = {x.shape[0] for x in inputs}
    if len(sizes) != 1:
        raise ValueError(f"inputs: stacked steps need equal sample counts, got {sorted(sizes)}; "
                         "group them with group_by_shape")
    n = sizes.pop()
    if n == 0:
        return [None] * len(models)
    for model in models:
        model.train()
    params, buffers = stack_models(models)
    # The same single-tensor Adam as training.make_optimizer: one fixed execution path.
    optimizer = torch.optim.Adam(list(params.values()), lr=lr, foreach=False, fused=False)
    template = copy.deepcopy(models[0]).to("meta")  # the architecture only; vmap supplies the weights
    losses_of = batched_loss(template, loss_fn)
    x_all = torch.stack(list(inputs))  # (M, n, C, H, W)
    t_all = tuple(torch.stack(list(t)) for t in zip(*targets, strict=True))  # each (M, n, ...)
    total = torch.zeros(len(models), device=x_all.device)
    for epoch in range(epochs):
        orders = _batch_orders(n, rng_positions, epoch, x_all.device)
        total = _train_epoch(losses_of, optimizer, (params, buffers), x_all, t_all, orders, batch_size)
    load_unstacked(models, params, buffers)
    return [float(v) / n for v in total]


def _train_epoch(losses_of, optimizer, state, x_all: torch.Tensor, t_all: tuple[torch.Tensor, ...],
                 orders: torch.Tensor, batch_size: int) -> torch.Tensor:
    """One pass over every model's data in its own order (M, n); returns (M,) sample-weighted loss sums."""
    total = torch.zeros(orders.shape[0], device=x_all.device)
    for start in range(0, orders.shape[1], batch_size):
        index = orders[:, start:start + batch_size]  # (M, b)
        optimizer.zero_grad(set_to_none=True)
        losses = losses_of(*state, _gather(x_all, index), *(_gather(t, index) for t in t_all))
        losses.sum().backward()  # the sum of per-model means: model i's gradient is that of its own loss
        optimizer.step()
        total += losses.detach() * index.shape[1]
    return total


def train_many(models: Sequence[nn.Module], inputs: Sequence[torch.Tensor], targets: Sequence[Targets], loss_fn,
               epochs: Sequence[int], batch_size: int, lr: float, rng_positions: Sequence[tuple],
               path: str = "auto") -> tuple[str, list[float | None]]:
    """Train several constituents' steps, by the plain loop or stacked in equal-shape groups.

    Returns (the path taken, each model's last-epoch mean loss). The loop path is exactly
    training.train_slice_step per model, the engine's reference.
    """
    device = inputs[0].device if inputs else torch.device("cpu")
    chosen = choose_path(path, device, len(models))
    if chosen == "loop":
        return chosen, [train_slice_step(m, x, t, loss_fn, e, batch_size, lr, p)
                        for m, x, t, e, p in zip(models, inputs, targets, epochs, rng_positions, strict=True)]
    losses: list[float | None] = [None] * len(models)
    for group in group_by_shape([x.shape[0] for x in inputs], epochs):
        pick = [models[i] for i in group], [inputs[i] for i in group], [targets[i] for i in group]
        group_losses = train_stacked(*pick, loss_fn, epochs[group[0]], batch_size, lr,
                                     [rng_positions[i] for i in group])
        for i, value in zip(group, group_losses, strict=True):
            losses[i] = value
    return chosen, losses
