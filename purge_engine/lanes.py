"""LanesExecutor: W constituent chains of one role trained at once, as lanes of one batched model.

A constituent is a tiny network; trained one at a time it leaves a GPU idle between kernel
launches, and on a CPU it pays Python and dispatch overhead per small batch. Lanes stack W
constituents' parameters (torch.func.stack_module_state) and run the model under torch.func.vmap:
one forward and one backward per iteration trains every lane on its own batch.

Each lane is independent by construction:
- its own data and its own batch order (generator_for(seed, side, constituent, step, epoch), as
  the loop draws it), padded to the fixed batch shape (W, batch_size) with a mask: padded rows
  repeat a real sample and weigh zero in the lane's masked mean loss, so they add exact zeros;
- its own optimizer state: Adam is elementwise, so Adam over the stacked tensors, with a step count
  per lane, is W independent Adams; a lane with no batch this iteration (its chain is done, or it
  has none) is left exactly as it was, moments included (`torch.where` on the lane's activity);
- its own place: the chain of constituent c always runs in lane c mod W, one chain after another.

Exactness (DESIGN section 6): measured on CPU, a lane's bits depend on the group's shape (W, the
batch size) and not on the other lanes' values, data or activity, nor on which lane it sits in. So
the path "lanes:W" goes into every checkpoint's environment; a retrain and verify's reference run
in a group of the same shape (idle lanes filled by nothing), and verify refuses the claim when the
recorded W differs. Lanes never equal the one-at-a-time loop bit for bit (batched kernels sum in
another order): a run is compared only with runs of the same path.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from purge_engine.config import AUTO_LANES, LANE_LIMIT
from purge_engine.constituents import ConstituentJob, StepSpec
from purge_engine.events import Cancelled, EventCallback, PhaseEvent, StepEvent
from purge_engine.seeding import generator_for
from purge_engine.training import Cost, restore_step, reusable_steps, save_step

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults: the loop's optimizer


def lanes_path(width: int) -> str:
    """The execution path a group of `width` lanes records in every checkpoint's environment."""
    return f"lanes:{width}"


def check_lanes(value) -> int:
    """W as asked for: an integer from 1 to LANE_LIMIT; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LANE_LIMIT:
        raise ValueError(f"lanes: got {value!r}, must be an integer from 1 to {LANE_LIMIT}")
    return value


def auto_lanes() -> int:
    """W when none is asked for: wider on a GPU, where a group costs little more than one model."""
    return AUTO_LANES["cuda" if torch.cuda.is_available() else "cpu"]


class LanesExecutor:
    """Every role's chains in groups of `lanes` (W) lanes, in this process: teachers first, then each
    method's students, W chains at a time."""

    name = "lanes"
    workers = 1

    def __init__(self, lanes: int | None = None):
        self.lanes = check_lanes(lanes) if lanes is not None else auto_lanes()

    @property
    def path(self) -> str:
        return lanes_path(self.lanes)

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers, "lanes": self.lanes}

    def train(self, run, methods: Sequence[str], on_event: EventCallback,
              should_stop: Callable[[], bool]) -> dict[str, Cost]:
        from purge_engine.executors import label_cache

        for role in ("teacher", *methods[:1]):
            check_fits(run, role, self.lanes)
        on_event(PhaseEvent("phase", "teachers"))
        costs = {"teacher": self._role(run, "teacher", None, on_event, should_stop)}
        for method in methods:
            on_event(PhaseEvent("phase", f"students:{method}"))
            labels = label_cache(run, on_event)
            costs[method] = self._role(run, method, labels, on_event, should_stop)
            costs[method].label_forwards += labels.label_forwards
        return costs

    def train_job(self, run, role: str, constituent: int, labels, job: ConstituentJob) -> Cost:
        """One chain (a part of it: check.py rebuilds a damaged run step by step) in its own lane of a
        group of this width, the others idle: the bits a full group gives it."""
        from purge_engine.events import ignore
        from purge_engine.executors import student_step_data, teacher_step_data

        data = teacher_step_data(run) if role == "teacher" else student_step_data(run, role, constituent, labels)
        return train_lanes(run, role, [_Chain(job, data)], self.lanes, ignore, lambda: False)

    def _role(self, run, role: str, labels, on_event, should_stop) -> Cost:
        from purge_engine.constituents import count

        return self.train_constituents(run, role, range(count(role, run.plan)), labels, on_event, should_stop)

    def train_constituents(self, run, role: str, constituents, labels, on_event, should_stop) -> Cost:
        """The given chains of one role in one group, each in lane constituent mod W: a member's bits
        depend on the group's shape, not on which other chains share it (a Ray task trains a block)."""
        from purge_engine.executors import student_step_data, teacher_step_data

        chains = [_Chain(run.job(role, c), teacher_step_data(run) if role == "teacher"
                         else student_step_data(run, role, c, labels)) for c in constituents]
        return train_lanes(run, role, chains, self.lanes, on_event, should_stop)


@dataclass
class _Chain:
    job: ConstituentJob
    step_data: Callable[[StepSpec], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


@dataclass
class _Lane:
    """One lane's queue of chains and where it stands in the step it trains."""

    chains: list[_Chain]
    chain: _Chain | None = None
    steps: list[StepSpec] = field(default_factory=list)  # what is left of the current chain
    spec: StepSpec | None = None
    inputs: torch.Tensor | None = None
    targets: tuple[torch.Tensor, ...] = ()
    epoch: int = 0
    order: torch.Tensor | None = None
    position: int = 0
    started: float = 0.0
    loss_sum: float = 0.0


def train_lanes(run, role: str, chains: list[_Chain], width: int, on_event: EventCallback,
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
    """The stacked parameters and Adam state of W lanes, and the one batched step that trains them."""

    def __init__(self, run, role: str, width: int):
        self.run, self.role, self.width = run, role, width
        config = run.config
        self.batch, self.lr, self.seed = config.batch_size, (config.teacher_lr if role == "teacher"
                                                             else config.student_lr), config.seed
        self.new_model = run.new_teacher if role == "teacher" else run.new_student
        models = [self.new_model(0) for _ in range(width)]
        if any(True for _ in models[0].buffers()):
            raise ValueError(f"executor: lanes train models without buffers; {type(models[0]).__name__} has some")
        params, _ = stack_module_state(models)
        self.params = {name: p.detach().clone().to(run.device).requires_grad_(True) for name, p in params.items()}
        self.moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in self.params.items()}
        self.steps = torch.zeros(width, dtype=torch.float64, device=run.device)
        template = copy.deepcopy(models[0]).to("meta")
        self.forward = vmap(lambda p, x: functional_call(template, p, (x,)))
        self.loss = _lane_losses(role, config)

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
            done = reusable_steps(self.run.store, job)
            for m in range(done):
                on_event(StepEvent("reused", job.role, job.constituent, m, n_steps, job.steps[m].ids.size,
                                   job.steps[m].epochs))
            if done == n_steps:
                continue
            model = self.new_model(job.constituent)
            if done:
                restore_step(model, self.run.store, job, done - 1, self.run.device)
                on_event(StepEvent("restored", job.role, job.constituent, done - 1, n_steps))
            with torch.no_grad():
                for name, tensor in model.named_parameters():
                    self.params[name][index].copy_(tensor)
            lane.chain, lane.steps = chain, list(job.steps[done:])
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
        with torch.no_grad():  # the loop makes a fresh Adam at every step
            for m, v in self.moments.values():
                m[index].zero_()
                v[index].zero_()
            self.steps[index] = 0
        lane.order = self._order(lane) if lane.inputs.shape[0] else None

    def _order(self, lane: _Lane) -> torch.Tensor:
        job = lane.chain.job
        position = (self.seed, job.rng_role, job.constituent, lane.spec.step, lane.epoch)
        return torch.randperm(lane.inputs.shape[0], generator=generator_for(*position)).to(self.run.device)

    def _save(self, index: int, lane: _Lane, on_event: EventCallback) -> Cost:
        """The lane's step is done: its checkpoint, with the mean loss of its last epoch (None: no data)."""
        n = lane.inputs.shape[0]
        state = {name: p[index].detach().clone() for name, p in self.params.items()}
        cost = save_step(lane.chain.job, lane.spec, self.run.store, state, lane.loss_sum / n if n else None,
                         lane.started, on_event)
        lane.spec = None
        return cost

    # -- one batched iteration --------------------------------------------------------------------------
    def iterate(self, lanes: list[_Lane], active: list[bool]) -> tuple[list[float], list[int]]:
        """One forward, backward and Adam step of every active lane on its next batch; returns each
        lane's mean loss on its batch and its batch's real sample count."""
        inputs, targets, mask = self._batches(lanes)
        for p in self.params.values():
            p.grad = None
        counts = mask.sum(1)
        per_lane = (self.loss(self.forward(self.params, inputs), targets) * mask).sum(1) / counts.clamp_min(1)
        per_lane.sum().backward()  # lane i's gradient is that of its own masked mean loss alone
        self._adam(torch.tensor(active, device=mask.device))
        return per_lane.detach().tolist(), [int(c) for c in counts.tolist()]

    def _batches(self, lanes: list[_Lane]):
        """(W, B, ...) inputs and targets and the (W, B) mask: a lane's next batch in its own order, padded
        with its first sample; an idle lane's rows are zeros (finite, masked out)."""
        batch, rows, target_rows, mask = self.batch, [], [], torch.zeros(self.width, self.batch,
                                                                          device=self.run.device)
        shape = next(lane for lane in lanes if lane.spec is not None)
        for index, lane in enumerate(lanes):
            if lane.spec is None:
                rows.append(torch.zeros((batch, *shape.inputs.shape[1:]), dtype=shape.inputs.dtype,
                                        device=self.run.device))
                target_rows.append(tuple(torch.zeros((batch, *t.shape[1:]), dtype=t.dtype, device=t.device)
                                         for t in shape.targets))
                continue
            take = lane.order[lane.position:lane.position + batch]
            mask[index, :take.numel()] = 1.0
            take = torch.cat([take, take[:1].expand(batch - take.numel())])
            rows.append(lane.inputs[take])
            target_rows.append(tuple(t[take] for t in lane.targets))
        targets = tuple(torch.stack(list(parts)) for parts in zip(*target_rows, strict=True))
        return torch.stack(rows), targets, mask

    @torch.no_grad()
    def _adam(self, active: torch.Tensor) -> None:
        """torch.optim.Adam's update (no weight decay, no amsgrad), with a step count per lane; lanes
        not active keep their parameters and moments."""
        (beta1, beta2), lr = BETAS, self.lr
        self.steps += active.to(self.steps.dtype)
        steps = self.steps.clamp_min(1)
        for name, p in self.params.items():
            m, v = self.moments[name]
            shape = (self.width,) + (1,) * (p.dim() - 1)
            keep = active.view(shape)
            grad = p.grad
            new_m = m.lerp(grad, 1 - beta1)
            new_v = v.mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = (lr / (1 - beta1 ** steps)).to(p.dtype).view(shape)
            correction = (1 - beta2 ** steps).sqrt().to(p.dtype).view(shape)
            new_p = p - step_size * new_m / (new_v.sqrt() / correction + EPS)
            m.copy_(torch.where(keep, new_m, m))
            v.copy_(torch.where(keep, new_v, v))
            p.copy_(torch.where(keep, new_p, p))


def _lane_losses(role: str, config) -> Callable[..., torch.Tensor]:
    """(W, B) per-sample losses from (W, B, classes) logits: cross-entropy for a teacher; for a student
    the KL divergence to the soft labels at T (times T^2), mixed with cross-entropy by alpha, as
    training.student_loss is per sample."""
    def cross_entropy(logits, labels):
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape)

    if role == "teacher":
        return lambda logits, targets: cross_entropy(logits, targets[0])
    temperature, alpha = config.temperature, config.alpha

    def student(logits, targets):
        soft, labels = targets
        kl = F.kl_div(F.log_softmax(logits / temperature, dim=-1), soft, reduction="none").sum(-1) * temperature**2
        return kl if alpha == 0 else (1 - alpha) * kl + alpha * cross_entropy(logits, labels)

    return student


# -- does a group fit? ------------------------------------------------------------------------------------
def check_fits(run, role: str, width: int) -> None:
    """Refuse a W whose group would not fit in the device's free memory: per lane, the parameters with
    their gradients and Adam moments, and a batch's activations kept for the backward pass (measured
    by a forward pass on the meta device)."""
    model = (run.new_teacher if role == "teacher" else run.new_student)(0)
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
