"""Shared test settings: one torch thread (tests must not fight over the 2 cores)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
