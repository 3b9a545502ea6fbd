"""Elementwise exp, log, log1p and power that give the same bits on every x86-64 CPU.

NumPy computes float64 exp, log, log1p and power with SVML kernels on AVX-512 machines and with
libm elsewhere; the two now and then differ in the last bit, and a density-ratio argmax then
differs from one machine to the next (a journal written on one could not be resumed on the
other: its replayed asks would change). Long double has no SIMD kernel: computing in it and
rounding back gives one result everywhere (measured: docs/decisions.md, "Same asks on any CPU").
"""

from __future__ import annotations

from typing import Any

import numpy as np

_WIDE = np.longdouble


def exp(x: Any) -> np.ndarray:
    """``np.exp(x)`` as float64, the same on every CPU."""
    return np.exp(np.asarray(x, dtype=_WIDE)).astype(np.float64)


def log(x: Any) -> np.ndarray:
    """``np.log(x)`` as float64, the same on every CPU."""
    return np.log(np.asarray(x, dtype=_WIDE)).astype(np.float64)


def log1p(x: Any) -> np.ndarray:
    """``np.log1p(x)`` as float64, the same on every CPU."""
    return np.log1p(np.asarray(x, dtype=_WIDE)).astype(np.float64)


def power(x: Any, p: float) -> np.ndarray:
    """``x ** p`` as float64, the same on every CPU."""
    return np.power(np.asarray(x, dtype=_WIDE), _WIDE(p)).astype(np.float64)
