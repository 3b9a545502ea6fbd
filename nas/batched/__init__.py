"""Train candidates that share an architecture as one stacked model (`torch.func`).

Members differ only in training hyperparameters (`VARYING`) and seed; their weights are stacked
(`functional_call` + `vmap`: one forward and backward per step for all). Each gets what
`nas.trainer.train_config` gives it alone: its initial weights, shuffle and augmentation draws
(its own generator), dropout masks (drawn outside vmap from its own generator, in call order),
lr schedule, label smoothing, and its own `make_optimizer` optimizer over views of its row of
the stack (the trainer's update arithmetic by construction).

`exact` (default on the CPU) runs linear, conv and layer-norm layers member by member with the
kernel a lone run calls, and batch norm with all members' channels in one kernel call: vmap's
rules (bmm, grouped conv, a norm's affine part split off) round differently, and Adam turns
that 1-ulp noise into lr-sized steps for parameters whose gradient is only rounding noise
(biases in front of batch norm): 1e-2 apart after two epochs. With it a member's parameters,
buffers and validation results equal its lone CPU fp32 run bit for bit (its reported training
loss to ~1e-7: vmap reduces the mean in another order). Without it (default on CUDA, where
bf16 autocast and fused dropout make lone runs incomparable anyway) vmap's kernels are used.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from nas.augment import AUGMENT
from nas.batched.layers import stand_in as layer_stand_in
from nas.data import Dataset
from nas.footprint import measure
from nas.optim import lr_factor, make_optimizer
from nas.trainer import TrainerOptions, TrainOutcome, TrainState, _autocast, on_device
from nas.trainer import resolve_device as _resolve_device
from nas.types import Result, TrialStatus

if TYPE_CHECKING:
    from spaces.training import TrainSettings

#: Configuration keys members of one group may differ in (besides the seed). Everything else,
#: the optimizer and the batch size included, must be equal.
VARYING = frozenset({"lr", "weight_decay", "dropout", "label_smoothing", "lr_schedule",
                     "warmup", "augment"})


def architecture_key(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What members of one group share: the configuration without the `VARYING` keys."""
    return tuple(sorted((k, repr(v)) for k, v in config.items() if k not in VARYING))


@dataclass
class _Member:
    seed: int
    settings: TrainSettings
    model: nn.Module
    shuffle: torch.Generator  # the trainer's generator: shuffles and augmentation draws
    dropout: torch.Generator  # stands for the global generator a lone run's dropout draws from
    drop_p: list[float] = field(default_factory=list)  # per dropout site, 0 where absent
    curve: list[dict[str, float]] = field(default_factory=list)
    status: TrialStatus = TrialStatus.OK
    train_loss: float = math.nan
    stopped_at: float = 0.0
    eval_seconds: float = 0.0
    perm: torch.Tensor | None = None


def train_group(configs: Sequence[Mapping[str, Any]], data: Dataset, *, epochs: float,
                seeds: Sequence[int], options: TrainerOptions | None = None,
                horizon: float | None = None, exact: bool | None = None) -> list[TrainOutcome]:
    """Train `configs` with `seeds` as one stacked model for `epochs` (lr schedule over
    `horizon` epochs); returns what `train_config(configs[i], data, epochs=epochs,
    seed=seeds[i], options=options)` would, in order (`Result.seconds`: an equal share).

    Members may differ only in the `VARYING` keys (lr, weight_decay, dropout, label_smoothing,
    lr_schedule, warmup, augment) and the seed: another optimizer, batch size or architecture
    key raises ValueError. `exact` defaults to True on the CPU (module doc). Epoch budgets only;
    no `options.compile` nor channels_last; dropout only as `nn.Dropout` modules.
    """
    from spaces import build_model
    from spaces.training import TrainSettings

    if not configs or len(configs) != len(seeds):
        raise ValueError("give one seed per configuration, and at least one configuration")
    first = architecture_key(configs[0])
    for i, config in enumerate(configs[1:], start=1):
        if architecture_key(config) != first:
            diff = sorted({k for k, _ in set(architecture_key(config)) ^ set(first)})
            raise ValueError(f"configuration {i} does not share configuration 0's architecture "
                             f"(differs in {', '.join(diff)}); only {', '.join(sorted(VARYING))} "
                             "and the seed may differ within a group")
    options = options or TrainerOptions()
    device = _resolve_device(options.device)
    generator_device = device if device.type == "cuda" else torch.device("cpu")
    members = []
    for config, seed in zip(configs, seeds, strict=True):
        with torch.random.fork_rng(devices=[]):  # as train_config: `seed` alone sets the weights
            torch.manual_seed(seed)
            model = build_model(config, data.input_shape, data.num_classes).to(device)
        generators = [torch.Generator(device=generator_device).manual_seed(int(seed))
                      for _ in range(2)]
        members.append(_Member(int(seed), TrainSettings.from_config(config), model,
                               *generators))
    exact = device.type == "cpu" if exact is None else exact
    return _Group(members, data, device, options, exact).run(epochs, horizon)


class _Group:
    """A group's stack: the skeleton module, a flat (members, parameters) buffer whose views
    are the stacked parameters and each member's optimizer parameters, stacked buffers."""

    def __init__(self, members: list[_Member], data: Dataset, device: torch.device,
                 options: TrainerOptions, exact: bool) -> None:
        self.members, self.device, self.options = members, device, options
        self.x_train, self.y_train, self.x_val, self.y_val = on_device(data, device)
        self.batch = min(members[0].settings.batch_size, len(self.x_train))
        self.classes = data.num_classes
        # A member without dropout has nn.Identity where one with it has nn.Dropout: the
        # skeleton comes from a member with the most dropout sites, the others get masks of 1.
        ref = max(members, key=lambda m: sum(isinstance(x, nn.Dropout) for x in m.model.modules()))
        self.skeleton = copy.deepcopy(ref.model).to("meta")
        for name, module in list(self.skeleton.named_modules()):
            stand_in = layer_stand_in(module, exact)
            if stand_in is not None:
                parent, _, leaf = name.rpartition(".")
                setattr(self.skeleton.get_submodule(parent), leaf, stand_in)
        self.sites, self.site_shapes = self._trace_sites(ref.model)
        for m in members:
            found = dict(m.model.named_modules())
            if any(not isinstance(found.get(n), (nn.Dropout, nn.Identity)) for n in self.sites):
                raise ValueError(f"members differ in more than dropout at {self.sites}")
            m.drop_p = [float(getattr(found[n], "p", 0.0)) for n in self.sites]
        n_members = len(members)
        named = [dict(m.model.named_parameters()) for m in members]
        shapes = {n: p.shape for n, p in self.skeleton.named_parameters()}
        self.flat = torch.cat([torch.stack([params[n].detach() for params in named])
                               .reshape(n_members, -1) for n in shapes], dim=1)
        self.grad = torch.zeros_like(self.flat)
        self.params: dict[str, torch.Tensor] = {}
        views: list[list[torch.Tensor]] = [[] for _ in members]
        offset = 0
        for name, shape in shapes.items():
            end = offset + math.prod(shape)
            self.params[name] = (self.flat[:, offset:end].view(n_members, *shape).detach()
                                 .requires_grad_())
            for i in range(n_members):
                view = self.flat[i, offset:end].view(shape)
                view.grad = self.grad[i, offset:end].view(shape)
                views[i].append(view)
            offset = end
        # The trainer's own optimizer per member over views of its row: the kernel a lone run
        # calls on tensors of the same sizes, so the update is bit for bit the lone one.
        self.optimizers = [make_optimizer(m.settings, v)
                           for m, v in zip(members, views, strict=True)]
        self.buffers = {n: torch.stack([dict(m.model.named_buffers())[n] for m in members])
                        for n, _ in ref.model.named_buffers()}

    def _trace_sites(self, model: nn.Module) -> tuple[list[str], list[torch.Size]]:
        """Dropout sites in call order (a lone run's draw order) with their input shapes,
        from one forward of the skeleton on the meta device."""
        sites = [n for n, x in model.named_modules() if isinstance(x, nn.Dropout)]
        calls: list[tuple[str, torch.Size]] = []
        hooks = [self.skeleton.get_submodule(n).register_forward_pre_hook(
            lambda module, args, n=n: calls.append((n, args[0].shape))) for n in sites]
        x = torch.empty((self.batch, *self.x_train.shape[1:]), device="meta")
        try:
            with torch.no_grad():
                functional_call(self.skeleton, {f"{n}.mask": torch.ones((), device="meta")
                                                for n in sites}, (x,), strict=False)
        finally:
            for h in hooks:
                h.remove()
        if sorted(n for n, _ in calls) != sorted(sites):  # one mask per site and step
            raise ValueError("a model whose nn.Dropout modules do not run once per forward")
        return [n for n, _ in calls], [shape for _, shape in calls]

    def _masks(self) -> dict[str, torch.Tensor]:
        """This step's masks: what `F.dropout` draws on the CPU (``bernoulli_(1 - p)``, then
        ``/ (1 - p)``), per member from its own generator, site after site."""
        def draw(m: _Member, p: float, shape: torch.Size) -> torch.Tensor:
            mask = torch.ones(shape, device=self.device)
            if p == 0 or m.status is not TrialStatus.OK:
                return mask
            return mask.bernoulli_(1 - p, generator=m.dropout).div_(1 - p)

        return {f"{n}.mask": torch.stack([draw(m, m.drop_p[k], shape) for m in self.members])
                for k, (n, shape) in enumerate(zip(self.sites, self.site_shapes, strict=True))}

    def _loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor,
              smooth: torch.Tensor) -> torch.Tensor:
        """`F.cross_entropy`'s label-smoothing formula with a per-member ε (``keep`` = 1 - ε,
        ``smooth`` = ε / classes); at ε = 0 its gradient is the plain loss's, exactly."""
        logp = nn.functional.log_softmax(functional_call(self.skeleton, (params, buffers), (x,)),
                                         dim=1)
        nll = nn.functional.nll_loss(logp, y)
        return keep * nll + (-logp.sum(1)).sum() / y.numel() * smooth

    def run(self, epochs: float, horizon_epochs: float | None) -> list[TrainOutcome]:
        """Train every member for `epochs`; one outcome per member."""
        start = time.monotonic()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            torch.backends.cudnn.benchmark = True
        members, n, batch = self.members, len(self.x_train), self.batch
        steps_per_epoch = max(1, n // batch)
        total = max(1, round(epochs * steps_per_epoch))
        horizon = total if horizon_epochs is None else max(1, round(horizon_epochs
                                                                    * steps_per_epoch))
        eps = [m.settings.label_smoothing for m in members]
        keep = torch.tensor([1 - e for e in eps], device=self.device)
        smooth = torch.tensor([e / self.classes for e in eps], device=self.device)
        loss_fn = vmap(self._loss)
        step = 0
        while step < total:
            for m in members:
                m.perm = torch.randperm(n, generator=m.shuffle, device=m.shuffle.device)
            perms = torch.stack([m.perm for m in members]).to(self.device)
            self.skeleton.train()
            loss_sum = torch.zeros(len(members), device=self.device)
            batches = 0
            while step < total:
                b = step % steps_per_epoch
                idx = perms[:, b * batch:(b + 1) * batch]
                inputs = self.x_train[idx]
                for i, m in enumerate(members):
                    augment = AUGMENT.get(m.settings.augment)
                    if augment is not None:  # from the member's generator, as alone
                        inputs[i] = augment(inputs[i], m.shuffle)
                with _autocast(self.device, self.options):
                    losses = loss_fn(self.params, {**self.buffers, **self._masks()}, inputs,
                                     self.y_train[idx], keep, smooth)
                grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
                torch.cat([g.reshape(len(members), -1) for g in grads], dim=1, out=self.grad)
                for m, optimizer in zip(members, self.optimizers, strict=True):
                    s = m.settings
                    for group in optimizer.param_groups:
                        group["lr"] = s.lr * lr_factor(s.lr_schedule, step / horizon, s.warmup)
                    optimizer.step()
                loss_sum += losses.detach().float()
                batches += 1
                step += 1
                if step % steps_per_epoch == 0:
                    break
            self._end_epoch(loss_sum, batches, step / steps_per_epoch, start)
            if all(m.status is not TrialStatus.OK for m in members):
                break
        return [self._outcome(i, step, steps_per_epoch, start) for i in range(len(members))]

    @torch.no_grad()
    def _end_epoch(self, loss_sum: torch.Tensor, batches: int, epoch: float,
                   start: float) -> None:
        """Record each member's epoch: validation summed as `nas.trainer.evaluate` sums it."""
        evaluated_at = time.monotonic()
        self.skeleton.eval()
        chunk, n_members = self.options.eval_batch(self.device), len(self.members)
        losses = [torch.zeros((), device=self.device) for _ in range(n_members)]
        correct = [torch.zeros((), device=self.device, dtype=torch.long)
                   for _ in range(n_members)]
        forward = vmap(lambda p, b, x: functional_call(self.skeleton, (p, b), (x,)),
                       in_dims=(0, 0, None))
        with _autocast(self.device, self.options):
            for s in range(0, len(self.x_val), chunk):
                logits = forward(self.params, self.buffers, self.x_val[s:s + chunk])
                target = self.y_val[s:s + chunk]
                for i in range(n_members):  # the lone run's reduction, member by member
                    losses[i] += nn.functional.cross_entropy(logits[i], target, reduction="sum")
                    correct[i] += (logits[i].argmax(dim=1) == target).sum()
        n_val = max(1, len(self.x_val))
        for i, m in enumerate(self.members):
            if m.status is not TrialStatus.OK:
                continue
            m.train_loss = float(loss_sum[i].item()) / max(1, batches)
            m.stopped_at = epoch
            if not math.isfinite(m.train_loss):
                m.status = TrialStatus.DIVERGED  # as alone: its last epoch is not evaluated
                continue
            m.curve.append({"epoch": epoch, "train_loss": m.train_loss,
                            "val_loss": float(losses[i].item()) / n_val,
                            "val_accuracy": float(correct[i].item()) / n_val,
                            "seconds": (time.monotonic() - start) / n_members})
            m.eval_seconds = (time.monotonic() - evaluated_at) / n_members

    def _outcome(self, i: int, step: int, steps_per_epoch: int, start: float) -> TrainOutcome:
        """Member `i`'s model (its slice of the stack), `Result` and `TrainState`."""
        m, n_members = self.members[i], len(self.members)
        stacked = {**self.params, **self.buffers}
        with torch.no_grad():
            for name, t in [*m.model.named_parameters(), *m.model.named_buffers()]:
                t.copy_(stacked[name][i])
        cuda = self.device.type == "cuda"
        peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else None
        spent = (time.monotonic() - start) / n_members
        diverged = m.status is TrialStatus.DIVERGED
        footprint = measure(m.model, (self.x_val if len(self.x_val) else self.x_train)[
            :self.batch], train_seconds=spent, peak_memory_mb=peak_mb,
            autocast=_autocast(self.device, self.options), latency=not diverged)
        metrics: dict[str, Any] = {"params": footprint.params, "device": str(self.device),
                                   "peak_memory_mb": peak_mb, "batched_members": n_members}
        common = {"status": m.status, "seconds": spent, "metrics": metrics,
                  "curve": tuple(m.curve), "footprint": footprint}
        if diverged:
            error = f"training loss became {m.train_loss} after {m.stopped_at:.2f} epochs"
            return TrainOutcome(Result(math.inf, epochs=m.stopped_at, error=error, **common))
        last = m.curve[-1]
        metrics.update(val_accuracy=last["val_accuracy"], val_loss=last["val_loss"],
                       train_loss=last["train_loss"], eval_seconds=m.eval_seconds)
        result = Result(1.0 - last["val_accuracy"], epochs=step / steps_per_epoch,
                        tiebreak_loss=float(last["val_loss"]), **common)
        # The lone run's global generator is the one its dropout drew from: on the CPU this
        # member's dropout generator; on CUDA the untouched seeded CPU one, and the CUDA one.
        cpu_rng = (torch.Generator().manual_seed(m.seed).get_state() if cuda
                   else m.dropout.get_state())
        state = TrainState(
            step=step, steps_per_epoch=steps_per_epoch,
            optimizer=copy.deepcopy(self.optimizers[i].state_dict()),
            shuffle_rng=m.shuffle.get_state(), torch_rng=cpu_rng,
            perm=m.perm.cpu() if m.perm is not None and step % steps_per_epoch else None,
            cuda_rng=m.dropout.get_state() if cuda else None)
        return TrainOutcome(result, m.model, state)
