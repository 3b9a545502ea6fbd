"""Timing a space's default model on this machine: what a time budget's plan is sized from."""

from __future__ import annotations

from ConfigSpace import ConfigurationSpace

from nas.data import Dataset

#: Batches a timing trains before it starts the clock.
WARMUP_BATCHES = 3
#: A timing with a limit scores this many validation samples and scales their time to the whole
#: split: a full validation pass of a shapes28 model took 0.66 s, a tenth of a 10 s budget, and
#: the warm-up and the timing each make one.
PROBE_VAL_SAMPLES = 256


def measure_epoch_seconds(space: ConfigurationSpace, data: Dataset, device: str = "cpu",
                          *, limit: float | None = None) -> float:
    """Seconds one epoch of `space`'s default model takes on `data`, validation included.

    WARMUP_BATCHES first pay the one-off costs (kernel selection, caches); then one epoch is
    timed and extrapolated from the batches it trained. Within `limit` seconds, both stop early
    (each after at least one batch) and validate on PROBE_VAL_SAMPLES samples, scaled up.
    """
    import dataclasses
    import time

    from nas.trainer import TrainerOptions, train_config
    from spaces.training import TrainSettings

    val_size = len(data.x_val)
    if limit is not None and val_size > PROBE_VAL_SAMPLES:
        data = dataclasses.replace(data, x_val=data.x_val[:PROBE_VAL_SAMPLES],
                                   y_val=data.y_val[:PROBE_VAL_SAMPLES])
    config = dict(space.get_default_configuration())
    options = TrainerOptions(device=device)
    began = time.monotonic()
    # A few batches: the first ones after a model is built run several times slower (kernel
    # selection, allocator growth), and a short timing must not extrapolate them.
    steps = max(1, len(data.x_train) // TrainSettings.from_config(config).batch_size)
    warmup = None if limit is None else began + limit / 2
    train_config(config, data, epochs=min(1.0, WARMUP_BATCHES / steps), seed=0, options=options,
                 deadline=warmup)
    deadline = None if limit is None else max(began + limit, time.monotonic())
    result = train_config(config, data, epochs=1, seed=0, options=options,
                          deadline=deadline).result
    evaluation = float(result.metrics.get("eval_seconds", 0.0))
    # Training extrapolated to a whole epoch, plus a whole validation pass.
    return (result.seconds - evaluation) / max(result.epochs, 1e-6) \
        + evaluation * val_size / len(data.x_val)
