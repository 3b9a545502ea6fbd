"""The one trainer every candidate goes through: (model, data, settings, budget) -> result.

Data is moved to the device once; each step slices a batch out of a shuffled index on the device,
so in-memory data costs no DataLoader and no host-device copy per step. Losses are summed on the
device and read once per epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas.augment import AUGMENT
from nas.data import Dataset
from nas.errors import UserError
from nas.footprint import measure
from nas.optim import lr_factor, make_optimizer
from nas.types import Result, TrialStatus

if TYPE_CHECKING:
    # Imported where used: `spaces` brings ConfigSpace, which a worker of plain functions
    # does not need.
    from spaces.training import TrainSettings

#: Evaluation batch on the CPU: a conv model's activations for a few hundred images stay in
#: cache; a batch of 4,096 scored 28 x 28 images 2-4 times slower (docs/decisions.md, "The
#: evaluation batch on the CPU").
CPU_EVAL_BATCH = 128
#: Evaluation batch on an accelerator, where larger batches only fill it better.
DEVICE_EVAL_BATCH = 4096
#: Before its first validation pass, a run expects one to take this share of its training
#: batches' time per sample (a forward pass without gradients; the first batches run slow).
FORWARD_SHARE = 0.5


@dataclass(frozen=True)
class TrainerOptions:
    """How to train, the same for every candidate of a search (never searched over).

    `precision` "auto" is bf16 autocast on CUDA and fp32 elsewhere; "fp32" turns autocast off.
    `eval_batch_size` None scores `CPU_EVAL_BATCH` samples at a time on the CPU and
    `DEVICE_EVAL_BATCH` on an accelerator.
    """

    device: str = "auto"
    eval_batch_size: int | None = None
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32"):
            raise UserError(f"precision is auto or fp32, got {self.precision!r}")
        if self.eval_batch_size is not None and (
                isinstance(self.eval_batch_size, bool) or not isinstance(self.eval_batch_size, int)
                or self.eval_batch_size < 1):
            raise UserError(f"eval_batch_size is a positive integer or None, "
                            f"got {self.eval_batch_size!r}")

    def eval_batch(self, device: torch.device | str) -> int:
        """Samples scored at a time on `device`."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        return CPU_EVAL_BATCH if torch.device(device).type == "cpu" else DEVICE_EVAL_BATCH

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings for the journal."""
        return dataclasses.asdict(self)


@dataclass
class TrainOutcome:
    """A trainer run: the `Result`, plus the trained model and its state (for checkpoints)."""

    result: Result
    model: nn.Module | None = field(repr=False, default=None)
    state: TrainState | None = field(repr=False, default=None)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; other names are checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} asked for, but MPS is not available here")
    return device


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             batch_size: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on (x, y), read from the device once."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        target = y[start:start + batch_size]
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    model.train(was_training)
    n = max(1, len(x))
    return float(loss_sum.item()) / n, float(correct.item()) / n


@dataclass
class TrainState:
    """Where a training run stopped, so a promoted trial continues instead of starting over.

    Holds the optimizer, the step count, the current epoch's shuffle and every random state,
    so that 3 epochs + 6 continued epochs give the same weights as 9 epochs straight.
    `cuda_rng` is the CUDA generator's state (dropout on a GPU draws from it), None on the CPU.
    """

    step: int
    steps_per_epoch: int
    optimizer: dict[str, Any]
    shuffle_rng: torch.Tensor
    torch_rng: torch.Tensor
    perm: torch.Tensor | None = None
    cuda_rng: torch.Tensor | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors and numbers, loadable with ``torch.load(weights_only=True)``."""
        return {"step": self.step, "steps_per_epoch": self.steps_per_epoch,
                "optimizer": self.optimizer, "shuffle_rng": self.shuffle_rng,
                "torch_rng": self.torch_rng, "perm": self.perm, "cuda_rng": self.cuda_rng}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainState:
        """Inverse of `to_dict`."""
        return cls(step=int(d["step"]), steps_per_epoch=int(d["steps_per_epoch"]),
                   optimizer=d["optimizer"], shuffle_rng=d["shuffle_rng"],
                   torch_rng=d["torch_rng"], perm=d.get("perm"), cuda_rng=d.get("cuda_rng"))


def train(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    *,
    epochs: float | None = None,
    seconds: float | None = None,
    deadline: float | None = None,
    options: TrainerOptions | None = None,
    seed: int = 0,
    on_epoch: Callable[[Mapping[str, float]], None] | None = None,
    horizon: float | None = None,
    resume: TrainState | None = None,
) -> TrainOutcome:
    """Train `model` for `epochs` or for `seconds` of wall time, then evaluate on validation.

    A time budget stops training after the batch that crosses it; the absolute `deadline` (in
    ``time.monotonic()`` seconds) one validation pass before it, so that the run ends by then.
    A trial stopped by `deadline` is reported as truncated.
    The lr schedule spans `horizon` epochs (default: `epochs`). With `resume`, training goes on
    from that state up to `epochs` in total, and the result reports only the epochs added.
    """
    if (epochs is None) == (seconds is None):
        raise ValueError("give exactly one of epochs or seconds")
    if resume is not None and epochs is None:
        raise ValueError("only an epoch budget can continue a previous run")
    options = options or TrainerOptions()
    device = resolve_device(options.device)
    # Dropout draws from torch's global generator: fork it, so the run is seeded by `seed`
    # (or continues the resumed state) and the caller's random state is left as it was.
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked, device_type=device.type if forked else "cuda"):
        torch.manual_seed(seed)
        if resume is not None:
            torch.set_rng_state(resume.torch_rng)
            if forked and resume.cuda_rng is not None:
                torch.cuda.set_rng_state(resume.cuda_rng, device)
        return _train(model, data, settings, epochs=epochs, seconds=seconds, deadline=deadline,
                      options=options, device=device, seed=seed, on_epoch=on_epoch,
                      horizon=horizon, resume=resume)


def train_config(
    config: Mapping[str, Any],
    data: Dataset,
    *,
    epochs: float | None = None,
    seconds: float | None = None,
    seed: int = 0,
    options: TrainerOptions | None = None,
    deadline: float | None = None,
    on_epoch: Callable[[Mapping[str, float]], None] | None = None,
    horizon: float | None = None,
    parent: Mapping[str, Any] | None = None,
) -> TrainOutcome:
    """Build the model `config` describes, initialised by `seed`, and train it on `data`: the
    one seam from a configuration to a trained model (objectives, problems, the probe).

    `parent` (a model file's contents with its training state) is continued instead of a fresh
    model; the other arguments are `train`'s.
    """
    from spaces import build_model  # models (and ConfigSpace) only once a model is trained
    from spaces.training import TrainSettings

    settings = TrainSettings.from_config(config)
    # Initialisation draws from torch's global generator: fork it so `seed` alone decides the
    # weights and the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(config, data.input_shape, data.num_classes)
    resume = None
    if parent is not None:
        model.load_state_dict(parent["state_dict"])
        resume = TrainState.from_dict(parent["train_state"])
    return train(model, data, settings, epochs=epochs, seconds=seconds, deadline=deadline,
                 options=options, seed=seed, on_epoch=on_epoch, horizon=horizon, resume=resume)


# The dataset a worker's trials train on, kept on its accelerator between trials (one at a time).
_RESIDENT: dict[str, Any] = {}


def on_device(data: Dataset, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Train and validation tensors of `data` on `device`.

    On an accelerator they are copied once (from pinned memory, asynchronously) and kept for
    the next trials on the same data, so a worker loads its data onto its GPU once.
    """
    splits = (data.x_train, data.y_train, data.x_val, data.y_val)
    if device.type == "cpu":
        return splits
    key = (id(data), str(device))
    if _RESIDENT.get("key") == key and _RESIDENT["data"]() is data:
        return _RESIDENT["tensors"]
    _RESIDENT.clear()  # let go of the previous dataset's copy before making this one
    cuda = device.type == "cuda"
    tensors = tuple(t.pin_memory().to(device, non_blocking=True) if cuda else t.to(device)
                    for t in splits)
    _RESIDENT.update(key=key, data=weakref.ref(data), tensors=tensors)
    return tensors


def _autocast(device: torch.device, options: TrainerOptions) -> Any:
    """bf16 autocast on CUDA (where supported) unless fp32 is asked for; fp32 elsewhere."""
    if device.type == "cuda" and options.precision != "fp32" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    *,
    epochs: float | None,
    seconds: float | None,
    deadline: float | None,
    options: TrainerOptions,
    device: torch.device,
    seed: int,
    on_epoch: Callable[[Mapping[str, float]], None] | None,
    horizon: float | None,
    resume: TrainState | None,
) -> TrainOutcome:
    start = time.monotonic()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    x_train, y_train, x_val, y_val = on_device(data, device)
    # channels_last pays on CUDA tensor cores for 2-D convolutions; on the CPU it does not.
    layout = torch.channels_last if cuda and options.channels_last and x_train.dim() == 4 \
        else torch.contiguous_format
    model = model.to(device, memory_format=layout)
    x_train, x_val = (x.contiguous(memory_format=layout) for x in (x_train, x_val))
    net = torch.compile(model) if options.compile else model

    n = len(x_train)
    batch_size = min(settings.batch_size, n)
    # Whole batches only: a last batch of one sample breaks batch norm, and reshuffling each
    # epoch still shows every sample.
    steps_per_epoch = max(1, n // batch_size)
    total_steps = math.inf if epochs is None else max(1, round(epochs * steps_per_epoch))
    horizon_steps = total_steps if horizon is None else max(1, round(horizon * steps_per_epoch))
    time_limit = math.inf if seconds is None else start + seconds

    optimizer = make_optimizer(settings, model.parameters())
    generator = torch.Generator(device=device if cuda else "cpu")
    generator.manual_seed(seed)
    step, perm = 0, None
    if resume is not None:
        if resume.steps_per_epoch != steps_per_epoch:
            raise ValueError("cannot continue a run whose batches differ from this one's")
        optimizer.load_state_dict(resume.optimizer)
        generator.set_state(resume.shuffle_rng)
        step = resume.step
        if step % steps_per_epoch and resume.perm is not None:
            perm = resume.perm.to(device)  # stopped mid-epoch: finish the same shuffle
    first_step = step
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    augment = AUGMENT.get(settings.augment)
    autocast = _autocast(device, options)

    curve: list[dict[str, float]] = []
    status = TrialStatus.OK
    train_loss = math.nan
    eval_seconds: float | None = None
    model.train()
    while step < total_steps:
        if perm is None or step % steps_per_epoch == 0:
            perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
        loss_sum = torch.zeros((), device=device)
        batches = 0
        timed_out = cut = False
        epoch_start = time.monotonic()
        while step < total_steps:
            if seconds is not None:
                progress = (time.monotonic() - start) / seconds
            else:
                progress = step / horizon_steps
            lr = settings.lr * lr_factor(settings.lr_schedule, progress, settings.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            b = step % steps_per_epoch
            idx = perm[b * batch_size:(b + 1) * batch_size]
            inputs = x_train[idx]
            if augment is not None:
                inputs = augment(inputs, generator).contiguous(memory_format=layout)
            with autocast:
                loss = loss_fn(net(inputs), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Batches are equal-sized, so the mean of batch means is the epoch mean.
            loss_sum += loss.detach().float()
            batches += 1
            step += 1
            now = time.monotonic()
            # The search's deadline also covers the validation pass that ends the run: a trial
            # cut there must not end later by one pass (on the CPU, a large image set's pass
            # is a third of an epoch).
            ending = 0.0 if deadline is None else eval_seconds if eval_seconds is not None \
                else FORWARD_SHARE * (now - epoch_start) / batches * len(x_val) / batch_size
            own_end = now >= time_limit
            if own_end or (deadline is not None and now + ending >= deadline):
                timed_out, cut = True, not own_end
                break
            if step % steps_per_epoch == 0:
                break
        train_loss = float(loss_sum.item()) / max(1, batches)
        if not math.isfinite(train_loss):
            status = TrialStatus.DIVERGED
            break
        evaluated_at = time.monotonic()
        with autocast:
            val_loss, val_acc = evaluate(net, x_val, y_val,
                                        batch_size=options.eval_batch(device))
        eval_seconds = time.monotonic() - evaluated_at
        point = {
            "epoch": step / steps_per_epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.monotonic() - start,
        }
        curve.append(point)
        if on_epoch is not None:
            on_epoch(point)
        if timed_out:
            if cut:  # the search's deadline, not the trial's own time budget
                status = TrialStatus.TRUNCATED
            break
        if deadline is not None and step < total_steps \
                and time.monotonic() + eval_seconds >= deadline:
            # One more batch would need one more validation pass, past the deadline.
            status = TrialStatus.TRUNCATED
            break

    spent_epochs = (step - first_step) / steps_per_epoch
    peak_mb = (torch.cuda.max_memory_allocated(device) / 2**20) if cuda else None
    inputs = (x_val if len(x_val) else x_train)[:batch_size]
    footprint = measure(model, inputs, train_seconds=time.monotonic() - start,
                        peak_memory_mb=peak_mb, autocast=autocast,
                        latency=status is not TrialStatus.DIVERGED)
    n_params = footprint.params
    elapsed = time.monotonic() - start
    if status is TrialStatus.DIVERGED:
        result = Result(
            loss=math.inf, status=status, epochs=spent_epochs, seconds=elapsed,
            metrics={"params": n_params, "device": str(device), "peak_memory_mb": peak_mb},
            curve=tuple(curve),
            error=f"training loss became {train_loss} after {step / steps_per_epoch:.2f} epochs",
            footprint=footprint,
        )
        return TrainOutcome(result, None)
    last = curve[-1]
    metrics = {
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "train_loss": last["train_loss"],
        "params": n_params,
        "device": str(device),
        "peak_memory_mb": peak_mb,
        # One pass over the validation split: what scoring this model costs at the search's end.
        "eval_seconds": eval_seconds,
    }
    result = Result(
        loss=1.0 - last["val_accuracy"],
        status=status,
        epochs=spent_epochs,
        seconds=elapsed,
        metrics=metrics,
        curve=tuple(curve),
        # Validation cross-entropy breaks ties between equal accuracies.
        tiebreak_loss=float(last["val_loss"]),
        footprint=footprint,
    )
    state = TrainState(
        step=step, steps_per_epoch=steps_per_epoch, optimizer=optimizer.state_dict(),
        shuffle_rng=generator.get_state(), torch_rng=torch.get_rng_state(),
        perm=perm.cpu() if step % steps_per_epoch else None,
        cuda_rng=torch.cuda.get_rng_state(device) if cuda else None,
    )
    return TrainOutcome(result, model.to(memory_format=torch.contiguous_format), state)
