"""Several trials per device, admitted by memory: estimate, correction, admission.

A trial's peak device memory is estimated before it starts (`estimate_mb`), corrected by the
peaks recorded for earlier trials (`Correction`), and reserved on a device while it runs; a
`Packer` admits a trial on a device only when it fits next to the reservations held there.

Nothing here imports torch at import time: the local executor's driver uses it before any
worker process has chosen its GPU.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: Fraction of each device's memory never reserved: the allocator's fragmentation and the
#: CUDA contexts of workers that have not run a trial yet (so do not show in the free memory).
SAFETY_MARGIN = 0.10
#: Bytes per value: fp32 weights, grads and optimizer state (bf16 activations cost less, which
#: the learned correction absorbs).
BYTES_PER_VALUE = 4
#: Activation memory in training, per value of the layers' outputs: the values saved for the
#: backward pass and their gradients.
ACTIVATION_FACTOR = 2.0
#: Values per sample, per value of the input, when the model's layers cannot be measured.
FALLBACK_ACTIVATIONS = 8.0
#: How many of the latest measured trials the correction reads.
RECENT = 50
#: Trials are similar when their estimates differ by at most this factor.
SIMILAR = 2.0
#: Most workers per device with ``workers_per_device="auto"``: beyond that, trials on one GPU
#: mostly wait for each other's kernels.
AUTO_MAX_PER_DEVICE = 8
#: Evaluation batch of the trainer on an accelerator (`nas.trainer.DEVICE_EVAL_BATCH`).
EVAL_BATCH = 4096

_MB = 2**20


def formula_mb(params: int, batch_size: int, input_numel: int, *,
               activations: float | None = None, largest: float | None = None,
               optimizer: str = "adamw", eval_batch_size: int = EVAL_BATCH,
               data_mb: float = 0.0) -> float:
    """Peak training memory in MB by a simple formula, before any correction:

    ``data + 4 B * (params * (2 + states) + max(ACTIVATION_FACTOR * batch * (input + acts),
    2 * eval_batch * largest))``: weights, grads and the optimizer's `states` per parameter
    (Adam 2, SGD 1), then the larger of training's activations (`activations`: the layers'
    output values per sample) and evaluation's (no grads: about two of the `largest` layer
    outputs alive at once). Without measured layers, ``FALLBACK_ACTIVATIONS * input``.
    """
    states = 1 if optimizer == "sgd" else 2
    if activations is None:
        activations = FALLBACK_ACTIVATIONS * input_numel
    if largest is None:
        largest = max(float(input_numel), activations / 4)
    train = ACTIVATION_FACTOR * batch_size * (input_numel + activations)
    evaluation = 2.0 * eval_batch_size * largest
    values = params * (2 + states) + max(train, evaluation)
    return data_mb + BYTES_PER_VALUE * values / _MB


def estimate_mb(config: Mapping[str, Any], input_shape: Sequence[int], num_classes: int,
                batch_size: int | None = None, *, eval_batch_size: int = EVAL_BATCH,
                data_mb: float = 0.0) -> float:
    """`formula_mb` for `config`'s model, measured on the meta device (no memory, a few ms):
    its parameters and each layer's output size for one sample. `batch_size` defaults to the
    configuration's own; `data_mb`: the dataset the trainer keeps on the device."""
    import torch

    from spaces import build_model
    from spaces.training import TrainSettings

    settings = TrainSettings.from_config(config)
    shape = tuple(int(d) for d in input_shape)
    with torch.device("meta"):
        model = build_model(config, shape, num_classes)
        params = sum(p.numel() for p in model.parameters())
        outputs: list[int] = []

        def hook(module: Any, args: Any, output: Any) -> None:
            tensors = output if isinstance(output, (tuple, list)) else (output,)
            outputs.append(sum(t.numel() for t in tensors if isinstance(t, torch.Tensor)))

        leaves = [m for m in model.modules() if not any(True for _ in m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            model.eval()  # batch norm on one sample
            with torch.no_grad():
                model(torch.empty((1, *shape)))
        except Exception:  # a layer the meta device cannot run: fall back to the input size
            outputs.clear()
        finally:
            for handle in handles:
                handle.remove()
    return formula_mb(int(params), batch_size or settings.batch_size, math.prod(shape),
                      activations=float(sum(outputs)) if outputs else None,
                      largest=float(max(outputs)) if outputs else None,
                      optimizer=settings.optimizer, eval_batch_size=eval_batch_size,
                      data_mb=data_mb)


def trial_memory_mb(objective: object, trial: Any) -> float | None:
    """`estimate_mb` of a trial of a training objective (its data resident on the device);
    None for any other objective, or a configuration no model can be built from."""
    data, options = getattr(objective, "data", None), getattr(objective, "options", None)
    if data is None or options is None:
        return None
    splits = (data.x_train, data.y_train, data.x_val, data.y_val)
    data_mb = sum(t.numel() * t.element_size() for t in splits) / _MB
    try:
        # Packing admits trials to an accelerator's memory: its evaluation batch, not the CPU's.
        return estimate_mb(trial.config, data.input_shape, data.num_classes,
                           eval_batch_size=options.eval_batch("cuda"),
                           data_mb=data_mb)
    except Exception:  # the trial fails on its worker, with the reason
        return None


def memory_hint(executor: object, objective: object, trial: Any) -> dict[str, float]:
    """``{"memory_mb": estimate}`` to pass to `executor.submit` when it packs trials by memory
    (`LocalExecutor` with ``workers_per_device``); {} otherwise, so any executor takes it."""
    if not getattr(executor, "packs_memory", False):
        return {}
    mb = trial_memory_mb(objective, trial)
    return {} if mb is None else {"memory_mb": mb}


class Correction:
    """Learned factor from estimated to measured peaks: the median ratio measured/estimated
    of the `recent` latest trials with an estimate within `similar` times this one's (of all
    of them when none is); 1 until a peak was measured."""

    def __init__(self, recent: int = RECENT, similar: float = SIMILAR) -> None:
        if recent < 1 or similar < 1:
            raise ValueError("recent must be >= 1 and similar >= 1")
        self.similar = similar
        self._seen: deque[tuple[float, float]] = deque(maxlen=recent)

    def record(self, estimate_mb: float, peak_mb: float | None) -> None:
        """Learn from a trial estimated at `estimate_mb` that peaked at `peak_mb`."""
        if peak_mb is not None and estimate_mb > 0 and peak_mb > 0:
            self._seen.append((estimate_mb, peak_mb / estimate_mb))

    def factor(self, estimate_mb: float) -> float:
        """What to multiply `estimate_mb` by."""
        if not self._seen:
            return 1.0
        near = [r for e, r in self._seen
                if estimate_mb > 0 and max(e, estimate_mb) <= self.similar * min(e, estimate_mb)]
        return statistics.median(near or [r for _, r in self._seen])


class DeviceMemory(Protocol):
    """Total and free memory (MB) of a device, by the index the driver process sees."""

    def total_mb(self, device: int) -> float:
        """The device's memory."""

    def free_mb(self, device: int) -> float:
        """What no process uses on it now."""


class CudaDeviceMemory:
    """A GPU's memory, from ``torch.cuda.mem_get_info`` (imported only when called: the
    first call makes a CUDA context in the driver process, which then counts as used)."""

    def __init__(self) -> None:
        self._totals: dict[int, float] = {}

    def total_mb(self, device: int) -> float:
        """The device's memory."""
        if device not in self._totals:
            import torch

            self._totals[device] = torch.cuda.mem_get_info(device)[1] / _MB
        return self._totals[device]

    def free_mb(self, device: int) -> float:
        """What no process uses on it now."""
        import torch

        return torch.cuda.mem_get_info(device)[0] / _MB


class FakeDeviceMemory:
    """Devices of `total_mb` each whose use is a counter the caller sets (`used`), for tests:
    it stands for other programs and for the workers' own contexts and resident data."""

    def __init__(self, total_mb: float | Mapping[int, float]) -> None:
        if not isinstance(total_mb, Mapping) and total_mb <= 0:
            raise ValueError(f"total_mb must be > 0, got {total_mb!r}")
        self._total = total_mb
        self.used: dict[int, float] = {}

    def total_mb(self, device: int) -> float:
        """The device's memory."""
        return float(self._total[device] if isinstance(self._total, Mapping) else self._total)

    def free_mb(self, device: int) -> float:
        """Its memory less `used[device]`."""
        return self.total_mb(device) - self.used.get(device, 0.0)


@dataclass(frozen=True)
class Held:
    """What a running trial holds: its device, reservation, and whether it runs alone."""

    device: int
    mb: float
    alone: bool


class Packer:
    """Admits trials onto devices by memory and holds their reservations while they run.

    A trial reserves its estimate times the learned correction (0 without an estimate: then
    only free workers limit it). It starts on a device when the reservations there plus its
    own fit in ``total * (1 - margin) - baseline``, the baseline being what the device uses
    for anything but our running trials (other programs, the workers' CUDA contexts and
    resident data): measured when none of ours runs there, else raised to what is used beyond
    their reservations. A trial that runs alone (an out-of-memory retry, or one that cannot
    fit even on an empty device) starts only on a device running nothing, and nothing joins
    it. Reservations are held only while a trial runs. Not thread-safe: the executor locks.
    """

    def __init__(self, memory: DeviceMemory, devices: Sequence[int], *,
                 margin: float = SAFETY_MARGIN, correction: Correction | None = None) -> None:
        if not 0 <= margin < 1:
            raise ValueError(f"margin must lie in [0, 1), got {margin!r}")
        if not devices:
            raise ValueError("packing needs at least one device")
        self.memory = memory
        self.devices = list(dict.fromkeys(int(d) for d in devices))
        self.margin = margin
        self.correction = correction or Correction()
        self._held: dict[int, Held] = {}
        self._baseline: dict[int, float] = {}
        self._reservations: deque[float] = deque(maxlen=RECENT)

    def reservation_mb(self, memory_mb: float | None) -> float:
        """What a trial estimated at `memory_mb` reserves: corrected by the measured peaks."""
        return 0.0 if not memory_mb else memory_mb * self.correction.factor(memory_mb)

    def capacity_mb(self, device: int) -> float:
        """Memory of `device` our trials may reserve, when they are all that runs there."""
        return self.memory.total_mb(device) * (1 - self.margin) - self._baseline.get(device, 0.0)

    def reserved_mb(self, device: int) -> float:
        """Held by the trials running on `device`."""
        return sum(h.mb for h in self._held.values() if h.device == device)

    def running(self, device: int) -> int:
        """How many trials run on `device`."""
        return sum(1 for h in self._held.values() if h.device == device)

    def room_mb(self, device: int) -> float:
        """What a further trial may reserve on `device` now (the baseline measured again)."""
        used = self.memory.total_mb(device) - self.memory.free_mb(device)
        reserved = self.reserved_mb(device)
        if not self.running(device):
            self._baseline[device] = max(0.0, used)
        else:  # whatever our trials do not account for is someone else's
            self._baseline[device] = max(self._baseline.get(device, 0.0), used - reserved)
        return self.capacity_mb(device) - reserved

    def admit(self, key: int, memory_mb: float | None, devices: Iterable[int], *,
              alone: bool = False) -> int | None:
        """Reserve for trial `key` on the one of `devices` (those with a free worker) that
        leaves it the most room; that device, or None when it fits on none of them now."""
        mb = self.reservation_mb(memory_mb)
        best: tuple[float, int, bool] | None = None
        for device in dict.fromkeys(devices):
            if any(h.alone for h in self._held.values() if h.device == device):
                continue
            room = self.room_mb(device)
            solo = alone or mb > self.capacity_mb(device)  # would never fit beside another
            fits = self.running(device) == 0 if solo else mb <= room
            if fits and (best is None or room > best[0]):
                best = (room, device, solo)
        if best is None:
            return None
        _, device, solo = best
        self._held[key] = Held(device, mb, solo)
        if memory_mb:
            self._reservations.append(mb)
        return device

    def release(self, key: int) -> Held | None:
        """Let go of trial `key`'s reservation (it ended, paused or was lost); what it held."""
        return self._held.pop(key, None)

    def settle(self, key: int, memory_mb: float | None, ok: bool, value: Any, *,
               retried: bool) -> bool:
        """Trial `key` answered `value` (raised it unless `ok`): release it, learn its measured
        peak; whether to run it again alone: out of memory, not `retried` nor run alone yet."""
        held = self.release(key)
        if ok and memory_mb:
            self.correction.record(memory_mb, measured_peak_mb(value))
        ran_alone = retried or (held is not None and held.alone)
        return not ran_alone and is_out_of_memory(ok, value)

    def typical_mb(self) -> float | None:
        """The median reservation of the latest estimated trials; None before any."""
        return statistics.median(self._reservations) if self._reservations else None

    def auto_workers(self, cap: int) -> int:
        """Trials to run at once over all devices with ``workers_per_device="auto"``."""
        typical = self.typical_mb()
        return sum(auto_workers_per_device(self.capacity_mb(d), typical, cap)
                   for d in self.devices)


def auto_workers_per_device(usable_mb: float, typical_mb: float | None, cap: int) -> int:
    """How many typical trials fit in a device's `usable_mb` (its memory less the margin and
    the baseline), between 1 and `cap`; 1 until a trial's estimate is known."""
    if not typical_mb or typical_mb <= 0:
        return 1
    return max(1, min(cap, math.floor(usable_mb / typical_mb)))


def auto_cap(devices: int, cores: int) -> int:
    """Workers started per device with ``"auto"``: each needs a core to launch its kernels and
    run its Python, so the cores shared among the devices, at most `AUTO_MAX_PER_DEVICE`."""
    return max(1, min(AUTO_MAX_PER_DEVICE, cores // max(1, devices)))


def is_out_of_memory(ok: bool, value: Any) -> bool:
    """Whether a task's answer is an out-of-memory failure: a raised ``OutOfMemoryError`` (or
    an error saying "out of memory"), or a failed result (an `Evaluation`'s) saying so in its
    first line, as the objectives report one."""
    if not ok:
        return type(value).__name__ == "OutOfMemoryError" or "out of memory" in str(value).lower()
    error = getattr(getattr(value, "result", value), "error", None)
    return isinstance(error, str) and "out of memory" in error.split("\n", 1)[0].lower()


def measured_peak_mb(value: Any) -> float | None:
    """The peak device memory a task's result (an `Evaluation`'s) recorded; None without."""
    metrics = getattr(getattr(value, "result", value), "metrics", None)
    peak = metrics.get("peak_memory_mb") if isinstance(metrics, Mapping) else None
    if isinstance(peak, (int, float)) and not isinstance(peak, bool) and peak > 0:
        return float(peak)
    return None


def packer_for(gpus: Sequence[int] | None, workers_per_device: int | str | None,
               memory: DeviceMemory | None, workers: int | None) -> tuple[Packer | None, int]:
    """A local executor's `Packer` (None: no packing) and how many workers to start per GPU,
    from its options; a `UserError` for options that do not go together."""
    from nas.errors import UserError
    from nas.executors.threads import cpu_count

    per_device = workers_per_device
    if isinstance(per_device, str) and per_device.isdigit():
        per_device = int(per_device)
    if per_device is None and memory is not None:
        per_device = 1
    if per_device is None:
        return None, 1
    if per_device != "auto" and (isinstance(per_device, bool) or not isinstance(per_device, int)
                                 or per_device < 1):
        raise UserError(f"--workers-per-device must be a whole number >= 1 or 'auto', "
                        f"got {workers_per_device!r}")
    if not gpus:
        raise UserError("--workers-per-device needs trials on GPUs (--device cuda)")
    if workers is not None:
        raise UserError("give --workers or --workers-per-device, not both")
    cap = auto_cap(len(gpus), cpu_count()) if per_device == "auto" else int(per_device)
    return Packer(memory or CudaDeviceMemory(), gpus), cap


def release_device_memory() -> None:
    """Give CUDA's cached blocks back after a task, so the GPU's use returns to the process's
    baseline (its context and resident data); nothing when CUDA was never used here."""
    torch = sys.modules.get("torch")  # never imported for it: a CPU worker stays without
    if torch is None or not torch.cuda.is_initialized():
        return
    import gc

    gc.collect()
    torch.cuda.empty_cache()
