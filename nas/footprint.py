"""A trained model's footprint: size, FLOPs, inference latency and memory, measured by the trainer.

Every trial the trainer finishes carries one (`Result.footprint`), so that a search can minimise
or constrain any of them and a journal answers "how large, how fast" without the model. FLOPs
are counted by `torch.utils.flop_counter.FlopCounterMode` on one forward pass (a multiply-add
counts 2); latency is the median of timed forward passes of one batch after a warm-up, in the
trial's own precision and device, with its batch size and repeat count recorded.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: Latency is timed for at most this share of the trial's training time (at least
#: `MIN_REPEATS` passes): a measurement must not cost a short search a trial. A first-rung
#: trial of a few tenths of a second gets one pass; the long trials that become results, 25.
LATENCY_SHARE = 0.02
MIN_REPEATS = 1
MAX_REPEATS = 25
WARMUP_PASSES = 1
FLOP_SAMPLES = 8


@dataclass(frozen=True)
class Footprint:
    """Size and cost of one model: what multi-objective searches minimise or constrain.

    `latency_ms` is the median time of a forward pass over `latency_batch` samples on
    `device` (its inter-quartile range in `latency_iqr_ms`, over `latency_repeats` passes);
    `peak_memory_mb` is the training run's peak allocated device memory (None off CUDA).
    """

    params: int
    flops_per_sample: float
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_batch: int | None = None
    latency_repeats: int = 0
    device: str = "cpu"
    peak_memory_mb: float | None = None

    @property
    def latency_ms_per_sample(self) -> float | None:
        """The batch's median latency divided by its size."""
        if self.latency_ms is None or not self.latency_batch:
            return None
        return self.latency_ms / self.latency_batch

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Footprint:
        """Inverse of `to_dict` (keys it does not know are ignored: a newer journal)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def count_params(model: Any) -> int:
    """Number of parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters()))


#: FLOPs per sample by (the model's structure, the input's shape): a promoted trial's model is
#: its parent's, and counting costs a dispatched forward pass (a few ms of a short trial).
_FLOPS: dict[tuple[str, tuple[int, ...]], float] = {}


def count_flops(model: Any, batch: Any) -> float:
    """Forward FLOPs per sample of `model` on `batch` (`spaces.forward_flops`), counted once
    per structure and input shape in this process."""
    from spaces.families import forward_flops

    key = (repr(model), tuple(batch.shape[1:]))
    if key not in _FLOPS:
        if len(_FLOPS) > 256:
            _FLOPS.clear()
        _FLOPS[key] = forward_flops(model, batch)
    return _FLOPS[key]


def time_forward(model: Any, batch: Any, *, budget_seconds: float, autocast: Any = None
                 ) -> tuple[float, float | None, int]:
    """Median and inter-quartile range (ms; None under 3 passes) of timed forward passes of
    `batch`, and how many.

    `WARMUP_PASSES` untimed passes first; then passes until `budget_seconds` is used (at
    least `MIN_REPEATS`, at most `MAX_REPEATS`). On CUDA each pass is synchronised.
    """
    import contextlib

    import torch

    cuda = batch.device.type == "cuda"
    context = autocast if autocast is not None else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with torch.inference_mode(), context:
            for _ in range(WARMUP_PASSES):
                model(batch)
            if cuda:
                torch.cuda.synchronize(batch.device)
            stop = time.perf_counter() + budget_seconds
            while len(times) < MAX_REPEATS and (len(times) < MIN_REPEATS
                                                or time.perf_counter() < stop):
                start = time.perf_counter()
                model(batch)
                if cuda:
                    torch.cuda.synchronize(batch.device)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    if len(times) < 3:  # too few for quartiles
        return statistics.median(times), None, len(times)
    quartiles = statistics.quantiles(times, n=4)
    return statistics.median(times), quartiles[2] - quartiles[0], len(times)


def measure(model: Any, batch: Any, *, train_seconds: float, peak_memory_mb: float | None,
            autocast: Any = None, latency: bool = True) -> Footprint:
    """The footprint of `model` on `batch` (one batch of inputs on the model's device).

    Latency is timed within `LATENCY_SHARE` of `train_seconds`; with ``latency=False`` (a
    diverged model, whose NaNs time differently) it is left out.
    """
    params = count_params(model)
    # Per-sample FLOPs do not depend on the batch: a few samples count them as well as many.
    flops = count_flops(model, batch[:FLOP_SAMPLES])
    if not latency or len(batch) == 0:
        return Footprint(params, flops, device=str(batch.device), peak_memory_mb=peak_memory_mb)
    median, iqr, repeats = time_forward(
        model, batch, budget_seconds=max(0.0, LATENCY_SHARE * train_seconds), autocast=autocast)
    return Footprint(params, flops, latency_ms=median, latency_iqr_ms=iqr,
                     latency_batch=len(batch), latency_repeats=repeats,
                     device=str(batch.device), peak_memory_mb=peak_memory_mb)

