"""Training-time augmentations of a batch, drawn from the trainer's own generator (so a
continued trial draws what a straight one would): whole-position shifts and sub-position
affine moves of images (N, C, H, W) and signals (N, C, L)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

#: Bounds of the random "affine" augmentation: rotation (degrees, images only), relative scale,
#: and translation as a fraction of each side.
AFFINE_DEGREES = 10.0
AFFINE_SCALE = 0.1
AFFINE_TRANSLATE = 1 / 16


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each sample of a batch of images (N, C, H, W) or signals (N, C, L) translated by its own
    random offset of up to 1/8 of each side (at least 1), zero-filled; other shapes unchanged.

    Zero is the training mean, as inputs are standardised.
    """
    spatial = x.shape[2:]
    if x.dim() not in (3, 4):
        return x
    n, c = x.shape[:2]
    shifts = [max(1, round(size / 8)) for size in spatial]
    pad: list[int] = []
    for s in reversed(shifts):  # F.pad lists the last axis first
        pad += [s, s]
    padded = nn.functional.pad(x, pad)
    # Per sample, the first index of its window in each padded axis.
    index = [
        torch.randint(0, 2 * s + 1, (n, 1), generator=generator, device=generator.device)
        .to(x.device) + torch.arange(size, device=x.device)
        for s, size in zip(shifts, spatial, strict=True)
    ]
    batch = torch.arange(n, device=x.device)
    channel = torch.arange(c, device=x.device)
    if x.dim() == 3:
        return padded[batch[:, None, None], channel[None, :, None], index[0][:, None, :]]
    return padded[batch[:, None, None, None], channel[None, :, None, None],
                  index[0][:, None, :, None], index[1][:, None, None, :]]


def random_affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image (N, C, H, W) rotated by up to AFFINE_DEGREES, scaled by up to AFFINE_SCALE and
    translated by up to AFFINE_TRANSLATE of a side (in the input's frame), a draw per sample;
    signals (N, C, L) scaled and translated along their length; other shapes unchanged.

    Sub-position moves keep the whole of tiny inputs (8x8, 1x40) that whole-pixel shifts cut
    off; the resampling fills with zero, the training mean of standardised inputs.
    """
    if x.dim() not in (3, 4):
        return x
    n = x.shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        draw = torch.rand(*shape, generator=generator, device=generator.device)
        return (2 * draw - 1).to(device=x.device, dtype=torch.float32)

    # affine_grid maps output to input coordinates in [-1, 1]: a side is 2 units long.
    angle = uniform(n) * math.radians(AFFINE_DEGREES) if x.dim() == 4 else torch.zeros(
        n, device=x.device)
    inverse_scale = 1 / (1 + uniform(n) * AFFINE_SCALE)
    shift = uniform(n, 2) * (2 * AFFINE_TRANSLATE)
    cos, sin = torch.cos(angle) * inverse_scale, torch.sin(angle) * inverse_scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    if x.dim() == 3:  # a signal is an image one row high that moves along its length only
        # Scalar fills, not a tensor from a list: that would be a host-to-device copy per step.
        theta[:, 1] = 0.0
        theta[:, 1, 1] = 1.0
        images = x.unsqueeze(2)
    else:
        images = x
    grid = nn.functional.affine_grid(theta.to(x.dtype), list(images.shape), align_corners=False)
    out = nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                    align_corners=False)
    return out.squeeze(2) if x.dim() == 3 else out


#: The trainer's augmentations by name ("none" is no call).
AUGMENT: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "shift": random_shift,
    "affine": random_affine,
}
