"""Offline datasets nobody tuned the defaults on: `wine`, `breast-cancer`, `shapes16`,
`shapes28`, `templates16` and `mnist1d-hard`.

Each is deterministic for the loader's `seed` (``--data-seed``), and a different seed gives
other splits (the scikit-learn sets) or other samples altogether (the generated ones). Every
one keeps a held-out test split that selection never sees.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nas.data.arrays import _split_train, _stratified_split
from nas.data.builtin import mnist1d_generated
from nas.data.dataset import DATASETS, Dataset, _assemble

#: Samples of the generated image sets per split (train, validation, test).
IMAGE_SPLITS = (3000, 1000, 1000)


# ---------------------------------------------------------------- scikit-learn's bundled sets


def _tabular(name: str, x_all: np.ndarray, y_all: np.ndarray, seed: int) -> Dataset:
    """A stratified 60/20/20 train/validation/test split of flat features, fixed by `seed`."""
    x = torch.as_tensor(np.asarray(x_all), dtype=torch.float32)
    y = np.asarray(y_all, dtype=np.int64)
    rng = np.random.default_rng(seed)
    rest, test = _stratified_split(y, 0.2, rng, "test")
    test_split = (x[torch.from_numpy(test)], y[test])
    # A quarter of the remaining 80 % is the validation 20 %.
    return _split_train(name, x[torch.from_numpy(rest)], y[rest], test_split, 0.25, rng,
                        int(y.max()) + 1)


@DATASETS.register(
    "wine", doc="scikit-learn wine: 178 samples, 13 features, 3 classes; 60/20/20 split; offline"
)
def _load_wine(*, root: Any, download: bool, seed: int) -> Dataset:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    return _tabular("wine", x, y, seed)


@DATASETS.register(
    "breast-cancer",
    doc="scikit-learn breast cancer: 569 samples, 30 features, 2 classes; 60/20/20 split; offline",
)
def _load_breast_cancer(*, root: Any, download: bool, seed: int) -> Dataset:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _tabular("breast-cancer", x, y, seed)


# ---------------------------------------------------------------- rendered shapes

# Shapes in local units (about the unit disc): ("segments", [(ax, ay, bx, by), ...]) is an
# outline of line segments, ("ring", radius) a circle outline, ("disk", radius) a filled disc.
# Each is told apart from the others under any rotation (no plus next to an X).
_SHAPES: tuple[tuple[str, Any], ...] = (
    ("ring", 1.0),
    ("disk", 0.75),
    ("segments", [(-0.8, -0.8, 0.8, -0.8), (0.8, -0.8, 0.8, 0.8), (0.8, 0.8, -0.8, 0.8),
                  (-0.8, 0.8, -0.8, -0.8)]),  # square
    ("segments", [(0.0, 1.0, -0.87, -0.5), (-0.87, -0.5, 0.87, -0.5),
                  (0.87, -0.5, 0.0, 1.0)]),  # triangle
    ("segments", [(-1.0, 0.0, 1.0, 0.0), (0.0, -1.0, 0.0, 1.0)]),  # plus
    ("segments", [(-1.0, 0.0, 1.0, 0.0)]),  # line
    ("segments", [(-1.0, -0.45, 1.0, -0.45), (-1.0, 0.45, 1.0, 0.45)]),  # parallel lines
    ("segments", [(-0.7, 0.9, -0.7, -0.7), (-0.7, -0.7, 0.9, -0.7)]),  # corner (L)
)


def _segment_distance(u: np.ndarray, v: np.ndarray,
                      segment: tuple[float, float, float, float]) -> np.ndarray:
    """Distance from the points (u, v) to the segment (ax, ay)-(bx, by)."""
    ax, ay, bx, by = segment
    dx, dy = bx - ax, by - ay
    t = np.clip(((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(u - ax - t * dx, v - ay - t * dy)


def _ink_distance(kind: str, param: Any, u: np.ndarray, v: np.ndarray,
                  half_width: np.ndarray) -> np.ndarray:
    """Distance from each point to the shape's ink in local units (<= 0 inside the ink)."""
    if kind == "disk":
        return np.hypot(u, v) - param
    if kind == "ring":
        centre = np.abs(np.hypot(u, v) - param)
    else:
        centre = functools.reduce(np.minimum, (_segment_distance(u, v, s) for s in param))
    return centre - half_width


def _render_shapes(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size) float32 images of the shapes `labels` at random pose, stroke and noise."""
    n = len(labels)
    pixel = 2.0 / size  # one pixel in image units, the image spanning [-1, 1]
    scale = rng.uniform(0.4, 0.75, n)
    angle = rng.uniform(0.0, 2 * math.pi, n)
    # The centre keeps most of the shape inside the frame; corners may be cut off.
    cx, cy = (rng.uniform(-1.0, 1.0, (2, n)) * (1.0 - 0.8 * scale))
    stroke = rng.uniform(0.8, 2.0, n) * pixel  # line width in image units
    grid = ((np.arange(size) + 0.5) * pixel - 1.0).astype(np.float32)
    gx, gy = grid[None, None, :], grid[None, :, None]

    def column(values: np.ndarray) -> np.ndarray:
        # float32: the distance fields of 5,000 images cost half the time of float64.
        return values.astype(np.float32)[:, None, None]

    dx, dy = gx - column(cx), gy - column(cy)
    cos, sin, s = column(np.cos(angle)), column(np.sin(angle)), column(scale)
    u, v = (cos * dx + sin * dy) / s, (cos * dy - sin * dx) / s
    half_width = column(stroke) / 2 / s
    images = np.empty((n, size, size), dtype=np.float32)
    for label, (kind, param) in enumerate(_SHAPES):
        rows = labels == label
        ink = _ink_distance(kind, param, u[rows], v[rows], half_width[rows]) * s[rows]
        # Anti-aliased: full ink a half pixel inside the edge, none a half pixel outside.
        images[rows] = np.clip(0.5 - ink / pixel, 0.0, 1.0)
    contrast = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
    background = rng.uniform(-0.2, 0.2, (n, 1, 1)).astype(np.float32)
    noise = rng.standard_normal(images.shape, dtype=np.float32) * np.float32(0.3)
    return contrast * images + background + noise


def _image_dataset(name: str, render: Callable[[np.ndarray, np.random.Generator], np.ndarray],
                   num_classes: int, seed: int) -> Dataset:
    """Balanced labels, images from `render`, and the `IMAGE_SPLITS` train/val/test split."""
    n_train, n_val, n_test = IMAGE_SPLITS
    rng = np.random.default_rng([seed, 0])
    labels = rng.permutation(np.arange(n_train + n_val + n_test) % num_classes)
    # Render from its own stream, so the labels do not depend on how rendering draws.
    x = torch.from_numpy(render(labels, np.random.default_rng([seed, 1]))).unsqueeze(1)
    # The labels are a random permutation already: consecutive blocks are random splits.
    bounds = ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, len(labels)))
    train, val, test = ((x[a:b].clone(), labels[a:b]) for a, b in bounds)
    return _assemble(name, train, val, test, num_classes)


@DATASETS.register(
    "shapes16",
    doc="seeded rendered shapes: 5,000 noisy 16x16 grey images (1x16x16), 8 classes; generated",
)
def _load_shapes16(*, root: Any, download: bool, seed: int) -> Dataset:
    return _image_dataset("shapes16", lambda y, rng: _render_shapes(y, 16, rng), len(_SHAPES),
                          seed)


@DATASETS.register(
    "shapes28",
    doc="seeded rendered shapes: 5,000 noisy 28x28 grey images (1x28x28), 8 classes; generated",
)
def _load_shapes28(*, root: Any, download: bool, seed: int) -> Dataset:
    return _image_dataset("shapes28", lambda y, rng: _render_shapes(y, 28, rng), len(_SHAPES),
                          seed)


# ---------------------------------------------------------------- noisy templates

#: Classes, templates per class, template side before and after upsampling, image side.
_TEMPLATE_CLASSES, _TEMPLATES_PER_CLASS, _TEMPLATE_CELLS, _TEMPLATE_SIDE, _CANVAS = 10, 3, 6, 12, 16


def _render_templates(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 16, 16) images: one of the label's random binary templates, shifted, flipped, noisy."""
    n = len(labels)
    cells = rng.random((_TEMPLATE_CLASSES, _TEMPLATES_PER_CLASS, _TEMPLATE_CELLS,
                        _TEMPLATE_CELLS)) < 0.5
    block = _TEMPLATE_SIDE // _TEMPLATE_CELLS
    templates = cells.repeat(block, axis=2).repeat(block, axis=3).astype(np.float64)
    chosen = templates[labels, rng.integers(0, _TEMPLATES_PER_CLASS, n)]
    # A tenth of the template's pixels flip, so no pixel is a sure sign of its class.
    chosen = np.where(rng.random(chosen.shape) < 0.1, 1.0 - chosen, chosen)
    images = np.zeros((n, _CANVAS, _CANVAS))
    room = _CANVAS - _TEMPLATE_SIDE
    rows, cols = rng.integers(0, room + 1, (2, n))
    for i in range(n):
        images[i, rows[i]:rows[i] + _TEMPLATE_SIDE, cols[i]:cols[i] + _TEMPLATE_SIDE] = chosen[i]
    return (images + rng.normal(0.0, 0.8, images.shape)).astype(np.float32)


@DATASETS.register(
    "templates16",
    doc="seeded noisy templates: 5,000 shifted 16x16 binary patterns (1x16x16), 3 per class, "
    "10 classes; generated",
)
def _load_templates16(*, root: Any, download: bool, seed: int) -> Dataset:
    return _image_dataset("templates16", _render_templates, _TEMPLATE_CLASSES, seed)


# ---------------------------------------------------------------- MNIST-1D, harder

#: Generator seed of `mnist1d-hard` at data seed 0; mnist1d's own is 42.
_MNIST1D_HARD_SEED = 2026


@functools.cache
def _mnist1d_hard_arrays(seed: int) -> dict[str, np.ndarray]:
    """MNIST-1D with doubled noise and shear, generated from seed `_MNIST1D_HARD_SEED + seed`."""

    def args() -> Any:
        # Imported here: mnist1d pulls in matplotlib and requests.
        from mnist1d.data import get_dataset_args

        out = get_dataset_args()
        out.corr_noise_scale *= 2
        out.iid_noise_scale *= 2
        out.shear_scale *= 2
        out.seed = _MNIST1D_HARD_SEED + seed
        return out

    return mnist1d_generated(args, key={"set": "mnist1d-hard", "scale": 2,
                                        "seed": _MNIST1D_HARD_SEED + seed})


@DATASETS.register(
    "mnist1d-hard",
    doc="MNIST-1D with twice the noise and shear, another generator seed: 5,000 signals (1x40), "
    "10 classes; generated",
)
def _load_mnist1d_hard(*, root: Any, download: bool, seed: int) -> Dataset:
    raw = _mnist1d_hard_arrays(seed)
    x = torch.tensor(raw["x"], dtype=torch.float32).unsqueeze(1)
    y = raw["y"].astype(np.int64)
    x_test = torch.tensor(raw["x_test"], dtype=torch.float32).unsqueeze(1)
    y_test = raw["y_test"].astype(np.int64)
    # As `mnist1d`: a tenth of the 4,000 training signals for validation.
    return _split_train("mnist1d-hard", x, y, (x_test, y_test), 0.1,
                        np.random.default_rng(seed), 10)
