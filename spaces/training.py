"""The training hyperparameters of a candidate, defined once: the choices, the searchable
parameters every space shares, and `TrainSettings`, what the trainer reads of a configuration.

The trainer depends on this module, never the other way round, so a space (or a model file)
needs no trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError
from spaces.overrides import Param

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")
#: Training-time augmentations: "shift" translates each image or signal by whole positions;
#: "affine" rotates, scales and translates by fractions of a position (bilinear resampling).
AUGMENTATIONS = ("none", "shift", "affine")

#: Training settings that belong to a candidate; shared by every architecture family.
TRAINING_PARAMS: tuple[Param, ...] = (
    Param("optimizer", "categorical", "adamw", choices=OPTIMIZERS, allowed=OPTIMIZERS,
          doc="sgd is SGD with Nesterov momentum 0.9"),
    Param("lr", "float", 1e-3, low=1e-4, high=1e-1, log=True, doc="peak learning rate"),
    Param("weight_decay", "float", 1e-4, low=1e-6, high=1e-1, log=True),
    Param("batch_size", "ordinal", 64, choices=(32, 64, 128, 256),
          allowed=(16, 32, 64, 128, 256, 512, 1024, 2048)),
    Param("lr_schedule", "categorical", "cosine", choices=SCHEDULES, allowed=SCHEDULES),
    # Left out unless asked for (e.g. ``augment=["none", "shift"]``): spaces stay as they were.
    Param("warmup", "float", 0.0, low=0.0, high=0.2, optional=True,
          doc="fraction of the lr schedule spent warming up linearly"),
    Param("label_smoothing", "float", 0.0, low=0.0, high=0.2, optional=True),
    Param("augment", "categorical", "none", choices=AUGMENTATIONS, allowed=AUGMENTATIONS,
          optional=True,
          doc="shift: random whole-position translations by up to 1/8 of a side; affine: "
              "small random rotations, scalings and sub-position translations"),
)


@dataclass(frozen=True)
class TrainSettings:
    """The training hyperparameters that belong to a candidate (part of its configuration)."""

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    lr_schedule: str = "cosine"
    #: Fraction of the schedule's horizon spent warming the learning rate up linearly from 0.
    warmup: float = 0.0
    label_smoothing: float = 0.0
    augment: str = "none"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; use one of {OPTIMIZERS}")
        if self.lr_schedule not in SCHEDULES:
            raise UserError(f"unknown lr_schedule {self.lr_schedule!r}; use one of {SCHEDULES}")
        if self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augment {self.augment!r}; use one of {AUGMENTATIONS}")
        if not (self.lr > 0 and self.batch_size >= 1 and self.weight_decay >= 0):
            raise UserError("lr and batch_size must be positive, weight_decay non-negative")
        if not (0 <= self.warmup < 1 and 0 <= self.label_smoothing < 1):
            raise UserError("warmup and label_smoothing must lie in [0, 1)")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        """Pick the training settings out of a configuration, defaults for the missing ones."""
        base = cls()
        return cls(
            optimizer=str(config.get("optimizer", base.optimizer)),
            lr=float(config.get("lr", base.lr)),
            weight_decay=float(config.get("weight_decay", base.weight_decay)),
            batch_size=int(config.get("batch_size", base.batch_size)),
            lr_schedule=str(config.get("lr_schedule", base.lr_schedule)),
            warmup=float(config.get("warmup", base.warmup)),
            label_smoothing=float(config.get("label_smoothing", base.label_smoothing)),
            augment=str(config.get("augment", base.augment)),
        )
