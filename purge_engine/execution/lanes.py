"""LanesExecutor: W constituent chains of one role trained at once, as lanes of one batched model.

A constituent is a tiny network; trained one at a time it leaves a GPU idle between kernel
launches, and on a CPU it pays Python and dispatch overhead per small batch. Lanes keep W
constituents' parameters as (W, ...) tensors, a lane per row, and train them with one forward and
one backward per iteration, every lane on its own batch: a stack of convolutions, ReLUs, max-pools
and linear layers (the image CNNs, the MLP) as grouped kernels (the lanes' images as channel groups
of one batch, convolved with groups=W; linear layers as batched matrix products), any other model
under torch.func.vmap.

Each lane is independent by construction:
- its own data and its own batch order (generator_for(seed, side, constituent, step, epoch), as
  the loop draws it), padded to the fixed batch shape (W, batch_size) with a mask: padded rows
  repeat a real sample and weigh zero in the lane's masked mean loss, so they add exact zeros;
- its own optimizer: torch.optim.Adam (fused where PyTorch has the kernel) over every lane's
  parameter views, one state and step count per view, is W independent Adams; a lane with no batch
  this iteration (its chain is done, or it has none) has no gradient, so Adam leaves it exactly as
  it was, moments and step count included;
- its own place: the chain of constituent c always runs in lane c mod W, one chain after another.

Exactness (DESIGN section 6): measured on CPU, a lane's bits depend on the group's shape (W, the
batch size) and not on the other lanes' values, data or activity, nor on which lane it sits in. So
the path "lanes:W:v2" (W and the kernels' version) goes into every checkpoint's environment; a
retrain and verify's reference run in a group of the same shape (idle lanes filled by nothing), and
verify refuses the claim when the recorded W or version differs. Lanes never equal the
one-at-a-time loop bit for bit (batched kernels sum in another order): a run is compared only with
runs of the same path.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from purge_engine.config import AUTO_LANES, LANE_LIMIT
from purge_engine.constituents import StepSpec
from purge_engine.events import Cancelled, EventCallback, StepEvent
from purge_engine.execution.chains import Bench, Chain, ChainTask, by_role, phase
from purge_engine.execution.executors import Executor
from purge_engine.losses import role_loss, role_lr
from purge_engine.seeding import generator_for
from purge_engine.training import Cost, restore_step, reusable_steps, save_step

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults: the loop's optimizer
# The smaller groups a CPU group may compute instead of all W lanes, each only where the probe shows
# this machine's kernels give every lane the bits the full group gives it (_compact_sizes).
COMPACT_CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)
_COMPACT_SIZES: dict[tuple, tuple[int, ...]] = {}  # the probe's answer, per model, loss, shape and W


LANES_VERSION = "v2"  # grouped kernels and a fused Adam; v1 (path "lanes:W", vmap and Adam by hand) had other bits


def lanes_path(width: int) -> str:
    """The execution path a group of `width` lanes records in every checkpoint's environment: W and the
    version of the lanes kernels, so a run trained by other kernels is refused by verify, not called inexact."""
    return f"lanes:{width}:{LANES_VERSION}"


def lanes_width(path: str | None) -> int | None:
    """W of a path this version's lanes train ("lanes:W:v2"); None for any other path (the loop, other kernels)."""
    parts = (path or "").split(":")
    if len(parts) == 3 and parts[0] == "lanes" and parts[1].isdigit() and 1 <= int(parts[1]) <= LANE_LIMIT:
        return int(parts[1]) if lanes_path(int(parts[1])) == path else None
    return None


def check_lanes(value) -> int:
    """W as asked for: an integer from 1 to LANE_LIMIT; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LANE_LIMIT:
        raise ValueError(f"lanes: got {value!r}, must be an integer from 1 to {LANE_LIMIT}")
    return value


def auto_lanes() -> int:
    """W when none is asked for: wider on a GPU, where a group costs little more than one model."""
    return AUTO_LANES["cuda" if torch.cuda.is_available() else "cpu"]


class LanesExecutor(Executor):
    """Every role's chains in groups of `lanes` (W) lanes, in this process: teachers first, then each
    method's students, W chains at a time, each in lane constituent mod W. A member's bits depend on
    the group's shape, not on which other chains share it, so a retrain with the other lanes idle, a
    Ray task's block and check's rebuild of one step all give the bits a full group gives."""

    name = "lanes"

    def __init__(self, lanes: int | None = None):
        self.asked = lanes is not None  # False: W is the engine's to choose
        self.lanes = check_lanes(lanes) if lanes is not None else auto_lanes()

    def for_run(self, recorded_path: str | None) -> LanesExecutor:
        """W left to the engine, on a run trained in lane groups (here or on Ray): that run's W, not the
        device's default, so a forget request or a verification runs on the run's own path."""
        width = None if self.asked else lanes_width(recorded_path)
        return self if width is None else LanesExecutor(width)

    @property
    def path(self) -> str:
        return lanes_path(self.lanes)

    def describe(self) -> dict:
        return {**super().describe(), "lanes": self.lanes}

    def train(self, run, tasks: Sequence[ChainTask], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        bench, costs = Bench(run, on_event), {}
        for role, group in by_role(tasks):
            check_fits(run, role, self.lanes)
            on_event(phase(role))
            chains = [bench.chain(task) for task in group]
            costs.setdefault(role, Cost()).add(train_lanes(run, role, chains, self.lanes, on_event, should_stop))
        return bench.settle(costs)


@dataclass
class _Lane:
    """One lane's queue of chains and where it stands in the step it trains."""

    chains: list[Chain]
    chain: Chain | None = None
    steps: list[StepSpec] = field(default_factory=list)  # what is left of the current chain
    spec: StepSpec | None = None
    inputs: torch.Tensor | None = None
    targets: tuple[torch.Tensor, ...] = ()
    epoch: int = 0
    order: torch.Tensor | None = None
    position: int = 0
    started: float = 0.0
    loss_sum: float = 0.0


def train_lanes(run, role: str, chains: list[Chain], width: int, on_event: EventCallback,
                should_stop: Callable[[], bool]) -> Cost:
    """Bring the chains of one role up to date, W at a time; returns the role's measured cost (its
    seconds: the wall time of the group, the steps overlapping in it)."""
    started, cost = time.perf_counter(), Cost()
    group = _Group(run, role, width)
    lanes = [_Lane([ch for ch in chains if ch.job.constituent % width == lane]) for lane in range(width)]
    while True:
        for index, lane in enumerate(lanes):
            cost.add(group.advance(index, lane, on_event))
        active = [lane.spec is not None for lane in lanes]
        if not any(active):
            break
        if should_stop():
            raise Cancelled(f"cancelled while {role} lanes were training")
        losses, counts = group.iterate(lanes, active)
        for lane, loss, n in zip(lanes, losses, counts, strict=True):
            if lane.spec is not None:
                lane.position += run.config.batch_size
                if lane.epoch == lane.spec.epochs - 1:
                    lane.loss_sum += loss * n
    cost.seconds = time.perf_counter() - started
    return cost


class _Group:
    """The parameters and Adam state of W lanes, and the one batched step that trains them.

    Every parameter is one (W, ...) tensor, a lane per row; a lane's parameter is a view of its row,
    and Adam holds one state per view. On a CPU an idle lane costs as much as a busy one, so a group of
    grouped kernels computes only the lanes that have a batch, rounded up to a smaller group size the
    probe proved gives every lane the full group's bits on this machine (_compact_sizes; which sizes
    do depends on the instruction set: on one AVX2 CPU a digits CNN group of 3 differs from groups of
    2, 4, 5 and 8). On a GPU an idle lane costs little and the group always computes all W lanes."""

    def __init__(self, run, role: str, width: int):
        self.run, self.role, self.width = run, role, width
        config = run.config
        self.batch, self.lr, self.seed = config.batch_size, role_lr(role, config), config.seed
        template = run.new_model(role, 0)
        if any(True for _ in template.buffers()):
            raise ValueError(f"executor: lanes train models without buffers; {type(template).__name__} has some")
        named = list(template.named_parameters())
        self.names = [name for name, _ in named]
        self.params = [torch.zeros((width, *p.shape), dtype=p.dtype, device=run.device, requires_grad=True)
                       for _, p in named]
        self.views = [[p.detach()[lane] for p in self.params] for lane in range(width)]
        self.optimizer = _lane_adam([v for lane in self.views for v in lane], self.lr, run.device)
        self.forward, grouped = _lane_forward(template, config.memory_format)
        self.loss = role_loss(role, config).per_sample
        # On a GPU an idle lane costs little: always all W. On a CPU, the sizes the probe proved.
        self.sizes = self._compact_sizes(template, run.bundle.train_x.shape[1:]) \
            if grouped and run.device.type == "cpu" and width > 1 else ()

    # -- a lane's chain and step boundaries ------------------------------------------------------------
    def advance(self, index: int, lane: _Lane, on_event: EventCallback) -> Cost:
        """Move a lane on: finish a step whose epochs are done (its checkpoint), start the next step or
        the next chain; a step without data is saved at once. Returns the cost of the steps it saved."""
        cost = Cost()
        while True:
            if lane.spec is not None and lane.position >= lane.inputs.shape[0]:
                lane.epoch, lane.position = lane.epoch + 1, 0
                if lane.epoch < lane.spec.epochs:
                    lane.order = self._order(lane)
                    continue
                cost.add(self._save(index, lane, on_event))
            if lane.spec is not None:
                return cost
            if not lane.steps and not self._next_chain(index, lane, on_event):
                return cost
            self._start_step(index, lane, lane.steps.pop(0), on_event)
            if lane.inputs.shape[0] == 0:  # an emptied slice: the loop saves the model unchanged, loss None
                cost.add(self._save(index, lane, on_event))

    def _next_chain(self, index: int, lane: _Lane, on_event: EventCallback) -> bool:
        """Load the next chain that has steps to train into the lane; False when none is left."""
        while lane.chains:
            chain = lane.chains.pop(0)
            job, n_steps = chain.job, len(chain.job.steps)
            done = reusable_steps(self.run.store, job, chain.end)
            for m in range(min(done, chain.end)):
                on_event(StepEvent("reused", job.role, job.constituent, m, n_steps, job.steps[m].ids.size,
                                   job.steps[m].epochs))
            if done >= chain.end:
                continue
            model = chain.new_model()
            if done:
                restore_step(model, self.run.store, job, done - 1, self.run.device)
                on_event(StepEvent("restored", job.role, job.constituent, done - 1, n_steps))
            with torch.no_grad():
                for view, (_, tensor) in zip(self.views[index], model.named_parameters(), strict=True):
                    view.copy_(tensor)
            lane.chain, lane.steps = chain, list(job.steps[done:chain.end])
            return True
        lane.chain = None
        return False

    def _start_step(self, index: int, lane: _Lane, spec: StepSpec, on_event: EventCallback) -> None:
        job = lane.chain.job
        on_event(StepEvent("training", job.role, job.constituent, spec.step, len(job.steps), spec.ids.size,
                           spec.epochs))
        lane.started = time.perf_counter()
        lane.spec, lane.epoch, lane.position, lane.loss_sum = spec, 0, 0, 0.0
        lane.inputs, lane.targets = lane.chain.step_data(spec)
        for view in self.views[index]:  # the loop makes a fresh Adam at every step: no moments, step 0
            self.optimizer.state.pop(view, None)
        lane.order = self._order(lane) if lane.inputs.shape[0] else None

    def _order(self, lane: _Lane) -> torch.Tensor:
        job = lane.chain.job
        position = (self.seed, job.rng_role, job.constituent, lane.spec.step, lane.epoch)
        return torch.randperm(lane.inputs.shape[0], generator=generator_for(*position)).to(self.run.device)

    def _save(self, index: int, lane: _Lane, on_event: EventCallback) -> Cost:
        """The lane's step is done: its checkpoint, with the mean loss of its last epoch (None: no data)."""
        n = lane.inputs.shape[0]
        state = {name: view.detach().clone() for name, view in zip(self.names, self.views[index], strict=True)}
        cost = save_step(lane.chain.job, lane.spec, self.run.store, state, lane.loss_sum / n if n else None,
                         lane.started, on_event)
        lane.spec = None
        return cost

    # -- one batched iteration --------------------------------------------------------------------------
    def iterate(self, lanes: list[_Lane], active: list[bool]) -> tuple[list[float], list[int]]:
        """One forward, backward and Adam step of every active lane on its next batch; returns each
        lane's mean loss on its batch and its batch's real sample count (0 and 0 for an idle lane)."""
        chosen = self._computed(active)
        inputs, targets, mask = self._batches(lanes, chosen)
        params = self.params
        if len(chosen) < self.width:
            where = torch.tensor(chosen, device=self.run.device)
            params = [p.index_select(0, where) for p in params]
        for p in self.params:
            p.grad = None
        per_lane, counts = self._losses(params, inputs, targets, mask)
        per_lane.sum().backward()  # lane i's gradient is that of its own masked mean loss alone
        for lane, views in enumerate(self.views):
            # A lane without a batch has no gradient: Adam skips it, parameters, moments and step count.
            for view, p in zip(views, self.params, strict=True):
                view.grad = p.grad[lane] if active[lane] else None
        self.optimizer.step()
        losses, sizes = [0.0] * self.width, [0] * self.width
        for lane, loss, n in zip(chosen, per_lane.detach().tolist(), counts.tolist(), strict=True):
            losses[lane], sizes[lane] = loss, int(n)
        return losses, sizes

    def _losses(self, params, inputs, targets, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(k,) masked mean losses of k lanes on their batches, and (k,) real sample counts."""
        counts = mask.sum(1)
        return (self.loss(self.forward(params, inputs), targets) * mask).sum(1) / counts.clamp_min(1), counts

    def _computed(self, active: list[bool]) -> list[int]:
        """The lanes this iteration computes: all W; or the busy ones, with as many idle ones as make the
        smallest proved size that holds them (self.sizes; none proved: all W)."""
        busy = [lane for lane, on in enumerate(active) if on]
        size = next((k for k in self.sizes if k >= len(busy)), self.width)
        if size == self.width:
            return list(range(self.width))
        idle = [lane for lane, on in enumerate(active) if not on]
        return sorted(busy + idle[:size - len(busy)])

    def _compact_sizes(self, template: nn.Module, sample_shape: torch.Size) -> tuple[int, ...]:
        """The group sizes k < W this machine's kernels compute with the full group's bits. The probe: one
        forward and backward of all W lanes on seeded random data, then, for each candidate k, of k of
        those lanes (the first k - 1 and the last, moved to row k - 1); k is kept when every loss and
        every gradient is bitwise equal to the full group's. Kernels are chosen by shape and instruction
        set, not by values, so a size that matches here matches on any data (and verify checks the
        claim independently). Cached per model, loss, shapes and W for the process."""
        config = self.run.config
        key = (str(template), self.role == "teacher", config.temperature, config.alpha, config.memory_format,
               tuple(sample_shape), self.batch, self.width, torch.get_num_threads(), str(self.run.device))
        if key not in _COMPACT_SIZES:
            _COMPACT_SIZES[key] = self._probe(template, sample_shape)
        return _COMPACT_SIZES[key]

    def _probe(self, template: nn.Module, sample_shape: torch.Size) -> tuple[int, ...]:
        g, width, batch = torch.Generator().manual_seed(0), self.width, self.batch
        stacked = [torch.randn((width, *p.shape), generator=g) * 0.1 for p in template.parameters()]
        layout = torch.channels_last if len(sample_shape) == 3 and self.run.config.memory_format == "channels_last" \
            else torch.contiguous_format
        inputs = torch.stack([torch.randn((batch, *sample_shape), generator=g).contiguous(memory_format=layout)
                              for _ in range(width)])  # as _batches stacks a lane's rows, in the run's layout
        with torch.no_grad():
            n_classes = template(inputs[0].contiguous()).shape[-1]
        labels = torch.randint(0, n_classes, (width, batch), generator=g)
        targets = (labels,) if self.role == "teacher" else \
            (torch.softmax(torch.randn((width, batch, n_classes), generator=g), -1), labels)
        mask = torch.ones(width, batch)

        def step(rows: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
            params = [p.clone().requires_grad_(True) for p in stacked]
            pick = (lambda t: t) if rows is None else (lambda t: t.index_select(0, rows))
            per_lane, _ = self._losses([pick(p) for p in params], pick(inputs), tuple(pick(t) for t in targets),
                                       pick(mask))
            per_lane.sum().backward()
            return per_lane.detach(), [p.grad for p in params]

        full_loss, full_grads = step(None)
        sizes = []
        for k in (k for k in COMPACT_CANDIDATES if k < width):
            rows = torch.tensor([*range(k - 1), width - 1])
            loss, grads = step(rows)
            if torch.equal(full_loss.index_select(0, rows), loss) and all(
                    torch.equal(a.index_select(0, rows), b.index_select(0, rows))
                    for a, b in zip(full_grads, grads, strict=True)):
                sizes.append(k)
        return tuple(sizes)

    def _batches(self, lanes: list[_Lane], chosen: list[int]):
        """(k, B, ...) inputs and targets and the (k, B) mask of the k chosen lanes: a lane's next batch in
        its own order, padded with its first sample; an idle lane's rows are zeros (finite, masked out)."""
        batch, rows, target_rows = self.batch, [], []
        mask = torch.zeros(len(chosen), batch, device=self.run.device)
        shape = next(lane for lane in lanes if lane.spec is not None)
        for row, index in enumerate(chosen):
            lane = lanes[index]
            if lane.spec is None:
                rows.append(torch.zeros((batch, *shape.inputs.shape[1:]), dtype=shape.inputs.dtype,
                                        device=self.run.device))
                target_rows.append(tuple(torch.zeros((batch, *t.shape[1:]), dtype=t.dtype, device=t.device)
                                         for t in shape.targets))
                continue
            take = lane.order[lane.position:lane.position + batch]
            mask[row, :take.numel()] = 1.0
            take = torch.cat([take, take[:1].expand(batch - take.numel())])
            rows.append(lane.inputs[take])
            target_rows.append(tuple(t[take] for t in lane.targets))
        targets = tuple(torch.stack(list(parts)) for parts in zip(*target_rows, strict=True))
        return torch.stack(rows), targets, mask


def _lane_adam(views: list[torch.Tensor], lr: float, device: torch.device) -> torch.optim.Adam:
    """torch.optim.Adam (the loop's optimizer, its defaults) over every lane's parameter views, one
    state per view: W independent Adams. Fused (one pass over a tensor per step) where PyTorch has
    the kernel, CPU and CUDA; a view whose gradient is None is skipped, as a lane with no batch must be."""
    fused = True if device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(views, lr=lr, betas=BETAS, eps=EPS, fused=fused)


# -- the batched forward ------------------------------------------------------------------------------------
_GROUPED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)


def _lane_forward(template: nn.Module, memory_format: str) -> tuple[Callable[..., torch.Tensor], bool]:
    """(k, B, classes) logits from the (k, ...) parameters and (k, B, ...) inputs of k lanes, and whether
    the model runs as grouped kernels.

    A plain stack of convolutions, ReLUs, max-pools and linear layers (the image CNNs and the MLP) runs
    as grouped kernels: the lanes' images side by side as channel groups of one (B, k*C, H, W) batch,
    convolved with groups=k, flattened per lane, and their linear layers as batched matrix products.
    Any other model (ResNet-18, the text bag) runs under torch.func.vmap."""
    layers = list(template.children()) if isinstance(template, nn.Sequential) else []
    if layers and all(_groupable(layer) for layer in layers) and _flat_before_linear(layers):
        return (lambda params, x: _grouped(layers, memory_format, params, x)), True
    meta = copy.deepcopy(template).to("meta")
    names = [name for name, _ in template.named_parameters()]
    batched = vmap(lambda p, x: functional_call(meta, p, (x,)))
    return (lambda params, x: batched(dict(zip(names, params, strict=True)), x)), False


def _groupable(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Conv2d):
        return layer.groups == 1 and layer.padding_mode == "zeros" and layer.bias is not None
    if isinstance(layer, nn.Flatten):
        return layer.start_dim == 1 and layer.end_dim == -1
    if isinstance(layer, nn.Linear):
        return layer.bias is not None
    return isinstance(layer, _GROUPED)


def _flat_before_linear(layers: list[nn.Module]) -> bool:
    """Images until the one Flatten, vectors after it: the two layouts _grouped handles."""
    flattens = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Flatten)]
    if len(flattens) != 1:
        return False
    images, vectors = layers[:flattens[0]], layers[flattens[0] + 1:]
    return not any(isinstance(layer, nn.Linear) for layer in images) and \
        not any(isinstance(layer, (nn.Conv2d, nn.MaxPool2d)) for layer in vectors)


def _grouped(layers: list[nn.Module], memory_format: str, params: list[torch.Tensor],
             x: torch.Tensor) -> torch.Tensor:
    weights, (width, batch) = iter(params), x.shape[:2]
    images = x.dim() == 5
    if images:  # (W, B, C, H, W) -> (B, W*C, H, W): lane w's channels are w*C .. w*C + C-1
        x = x.transpose(0, 1).reshape(batch, width * x.shape[2], *x.shape[3:])
        if memory_format == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            w, b = next(weights), next(weights)
            x = F.conv2d(x, w.flatten(0, 1), b.flatten(), layer.stride, layer.padding, layer.dilation, groups=width)
        elif isinstance(layer, nn.ReLU):
            x = F.relu(x)
        elif isinstance(layer, nn.MaxPool2d):
            x = F.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        elif isinstance(layer, nn.Flatten):  # -> (W, B, features), in each lane's own nn.Flatten order
            x = x.reshape(batch, width, -1).transpose(0, 1) if images else x.flatten(2)
        else:  # nn.Linear on (W, B, in), as (W, out, in) @ (W, in, B): its weight's gradient needs no transpose
            w, b = next(weights), next(weights)
            x = torch.baddbmm(b.unsqueeze(2), w, x.transpose(1, 2)).transpose(1, 2)
    return x


# -- does a group fit? ------------------------------------------------------------------------------------
def check_fits(run, role: str, width: int) -> None:
    """Refuse a W whose group would not fit in the device's free memory: per lane, the parameters with
    their gradients and Adam moments, and a batch's activations kept for the backward pass (measured
    by a forward pass on the meta device)."""
    model = run.new_model(role, 0)
    params = sum(p.numel() for p in model.parameters())
    activations = _activation_count(model, run.bundle.train_x[:1])
    lane_bytes = 4 * (4 * params + 3 * run.config.batch_size * activations)
    free = _free_bytes(run.device)
    if free is not None and width * lane_bytes > 0.8 * free:
        fit = max(0, int(0.8 * free // lane_bytes))
        raise ValueError(f"lanes: got {width}, but a group of {width} {role} lanes needs about "
                         f"{width * lane_bytes / 2**30:.1f} GiB and {run.device} has {free / 2**30:.1f} GiB free: "
                         f"use at most {fit} lanes")


def _activation_count(model, sample: torch.Tensor) -> int:
    """Numbers every module's output holds for one sample (the forward on the meta device: no work)."""
    meta, total = copy.deepcopy(model).to("meta"), [0]
    hooks = [m.register_forward_hook(lambda _m, _i, out: total.__setitem__(0, total[0] + out.numel()))
             for m in meta.modules() if not list(m.children())]
    with torch.no_grad():
        meta(sample.to("meta"))
    for hook in hooks:
        hook.remove()
    return total[0]


def _free_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
