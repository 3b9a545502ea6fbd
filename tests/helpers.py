"""Small builders shared by tests."""

from __future__ import annotations

import torch

from nas.data import Dataset


def blobs(n: int = 300, d: int = 8, classes: int = 3, seed: int = 0) -> Dataset:
    """A tiny learnable dataset: gaussian class clusters, already standardised."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * 2.0

    def split(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (m,), generator=g)
        return centers[y] + torch.randn(m, d, generator=g), y

    (xt, yt), (xv, yv), (xs, ys) = split(n), split(n // 3), split(n // 3)
    return Dataset(name="blobs", x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs,
                   y_test=ys, input_shape=(d,), num_classes=classes,
                   mean=torch.zeros(d), std=torch.ones(d))
