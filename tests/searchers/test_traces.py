from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nas.engine.phases import same_ask

FIXTURES = Path(__file__).parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import searcher_traces  # noqa: E402

GOLDEN = json.loads(searcher_traces.TRACES.read_text())


def _first_difference(got: list, want: list) -> str:
    for k, (a, b) in enumerate(zip(got, want, strict=False)):
        if not same_ask(a, b):
            return f"event #{k}: got {a}, the trace holds {b}"
    return f"{len(got)} events, the trace holds {len(want)}"


@pytest.mark.parametrize(("name", "options"), searcher_traces.CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(searcher_traces.CASES)])
def test_searchers_ask_what_they_asked_before_the_refactor(name, options) -> None:
    for spec in searcher_traces.DRIVES:
        got = json.loads(json.dumps(searcher_traces.drive(name, options, spec)))
        want = GOLDEN[searcher_traces.key(name, options, spec)]
        # The traces were written on a CPU without AVX-512, whose exp and log round a few
        # values differently in the last bit: the same decisions, within `SAME_FLOAT`.
        assert same_ask(got, want), f"{name} {options} on {spec}: {_first_difference(got, want)}"
