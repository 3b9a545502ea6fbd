"""`python -m nas` runs the command line."""

from __future__ import annotations

from nas.cli import run

run()
