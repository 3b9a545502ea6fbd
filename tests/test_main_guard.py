"""Worker processes re-run a script's top level (issue 21, item 10): a search started there
without ``if __name__ == "__main__":`` is refused in one line, not run 20 times over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import nas
from ConfigSpace import ConfigurationSpace, Float


def objective(config, budget):
    return (config["x"] - 0.3) ** 2


space = ConfigurationSpace(space={{"x": Float("x", (0.0, 1.0))}})
{guard}nas.optimize(objective, space, "random", "2trials", storage=":memory:",
{indent}            executor="local", workers=2)
{indent}print("searched")
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_an_unguarded_script_is_told_to_add_the_guard(tmp_path: Path, guarded: bool) -> None:
    script = tmp_path / "search.py"
    script.write_text(SCRIPT.format(guard='if __name__ == "__main__":\n    ' if guarded else "",
                                    indent="    " if guarded else ""))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                               "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if guarded:
        assert done.returncode == 0, done.stderr
        assert "searched" in done.stdout
    else:
        assert done.returncode != 0 and "searched" not in done.stdout
        last = done.stderr.strip().splitlines()[-1]
        assert 'if __name__ == "__main__":' in last and "search.py, line 11" in last


def test_the_guard_check_reads_either_spelling() -> None:
    import ast

    from nas.executors.base import _tests_main

    for text in ('__name__ == "__main__"', "'__main__' == __name__"):
        assert _tests_main(ast.parse(text, mode="eval").body)
    assert not _tests_main(ast.parse('__name__ != "__main__"', mode="eval").body)
