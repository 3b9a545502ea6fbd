"""Benchmark plumbing: collect `bench_*.py` files and print the ratios they report at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

_REPORT = pytest.StashKey[list[str]]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect `bench_*.py` too: the default pattern (`test_*.py`) would skip them in a dir run."""
    # A file named on the command line is collected by pytest itself: don't collect it twice.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Start the session with an empty report."""
    config.stash[_REPORT] = []


@pytest.fixture(scope="session")
def bench_report(pytestconfig: pytest.Config) -> list[str]:
    """Lines a benchmark wants shown in the terminal summary (visible without `-s`)."""
    return pytestconfig.stash[_REPORT]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reported lines (ratios measured within this run) after the benchmark tables."""
    lines = terminalreporter.config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("benchmark ratios (same run)")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _pinned_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run a module at its `THREADS` torch threads (if it sets them), then restore the caller's."""
    threads = getattr(request.module, "THREADS", None)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    yield
    torch.set_num_threads(before)
