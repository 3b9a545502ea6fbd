"""Shared test settings: one torch thread (tests must not fight over the 2 cores)."""

from __future__ import annotations

import os

import torch

torch.set_num_threads(1)
# A search measures its threads (`nas.executors.threads`) unless told: tests, and the processes
# they start, run with one.
os.environ.setdefault("NAS_TORCH_THREADS", "1")
