"""Shared test settings: one torch thread (tests must not fight over the 2 cores)."""

from __future__ import annotations

import os
import tempfile

import torch

torch.set_num_threads(1)
# A search measures its threads (`nas.executors.threads`) unless told: tests, and the processes
# they start, run with one.
os.environ.setdefault("NAS_TORCH_THREADS", "1")
# Searches leave their thread counts for the searches beside them (`claim`); tests see only
# their own process's, not a search the machine runs meanwhile nor another pytest-xdist
# worker's (workers inherit the controller's environment, so each makes its own folder).
if "NAS_THREAD_CLAIMS" not in os.environ or "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["NAS_THREAD_CLAIMS"] = tempfile.mkdtemp(prefix="nas-test-threads-")
# Generated datasets are cached per machine (`nas.data.builtin.generated_cache`); tests keep
# theirs to this run, shared with the processes they start.
if "NAS_CACHE_DIR" not in os.environ:
    os.environ["NAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="nas-test-cache-")
