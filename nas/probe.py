"""Timing a space's default model on this machine: what a time budget's plan is sized from."""

from __future__ import annotations

from ConfigSpace import ConfigurationSpace

from nas.data import Dataset

#: Batches a timing trains before it starts the clock.
WARMUP_BATCHES = 3


def measure_epoch_seconds(space: ConfigurationSpace, data: Dataset, device: str = "cpu",
                          *, limit: float | None = None) -> float:
    """Seconds one epoch of `space`'s default model takes on `data`, validation included.

    WARMUP_BATCHES first pay the one-off costs (kernel selection, caches); then one epoch is
    timed and extrapolated from the batches it trained. Within `limit` seconds, both stop early
    (each after at least one batch).
    """
    import time

    from nas.trainer import TrainerOptions, train_config
    from spaces.training import TrainSettings

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
    return (result.seconds - evaluation) / max(result.epochs, 1e-6) + evaluation
