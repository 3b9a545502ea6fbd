"""Every code example of README.md and docs/*.md works.

- A ```python block runs, in a fresh temporary working directory: in this process (its output
  captured), or as a script of its own when it holds ``if __name__ == "__main__":`` (worker
  processes re-run a script's top level). A block right after ``<!-- not run: REASON -->`` is
  skipped with that reason (GPU-only or long examples; keep them few).
- A block right after ``<!-- copy of: PATH -->`` must equal that file of the repository.
- Every ``nas ...`` command of a shell block (```bash, ```console or a bare ```) must parse with
  the real command line, name searchers, spaces, problems, datasets and ``--set`` /
  ``--space-update`` values that exist, and the listing commands (``nas spaces``,
  ``nas searchers``, ``nas datasets``) run.
- The README keeps the test command that `.ci/run` runs, verbatim.

docs/decisions.md is a log of measurements, not examples: it is left out.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md")
                                    if p.name != "decisions.md")]
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
COPY_OF = re.compile(r"^<!--\s*copy of:\s*(?P<path>\S+)\s*-->$")
SHELL = {"", "bash", "sh", "shell", "console"}
#: Listing commands that are cheap enough to run for real.
RUN = {"spaces", "searchers", "datasets"}
#: The longest a script example may take (seconds).
SCRIPT_TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    note: str  # the line just above the opening fence

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        match = NOT_RUN.match(self.note)
        return match["reason"] if match else None

    @property
    def copy_of(self) -> str | None:
        match = COPY_OF.match(self.note)
        return match["path"] if match else None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of `path`, in order (indented fences of list items included)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        note = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        body, j = [], i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        else:
            raise AssertionError(f"{path.relative_to(ROOT)}:{i + 1}: unclosed code block")
        found.append(Block(path, i + 1, opening["info"].strip().split(" ")[0].lower(),
                           "\n".join(body) + "\n", note))
        i = j + 1
    return found


ALL = [b for path in DOCS for b in blocks(path)]
PYTHON = [b for b in ALL if b.lang in ("python", "py")]
SHELL_BLOCKS = [b for b in ALL if b.lang in SHELL]


def test_the_examples_are_found():
    # The extraction itself: if it broke, every test below would pass on nothing.
    assert len(DOCS) >= 15, [p.name for p in DOCS]
    assert len(PYTHON) >= 20 and len(SHELL_BLOCKS) >= 20
    assert {b.path.name for b in PYTHON} >= {"README.md", "quickstart.md", "data.md"}
    skipped = [b.where for b in PYTHON if b.not_run]
    assert len(skipped) <= 2, f"keep skipped examples few: {skipped}"


# ---------------------------------------------------------------- Python examples


@pytest.fixture
def registries():
    """Searchers an example registers are forgotten afterwards (other tests list them all)."""
    from searchers import registry

    before = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_example_runs(block, tmp_path, monkeypatch, registries):
    if block.copy_of:
        copied = (ROOT / block.copy_of).read_text(encoding="utf-8")
        assert block.text == copied, f"{block.where} is no longer a copy of {block.copy_of}"
    if block.not_run:
        pytest.skip(f"{block.where}: {block.not_run}")
    monkeypatch.chdir(tmp_path)
    if re.search(r"^if __name__ == .__main__.:", block.text, re.MULTILINE):
        script = tmp_path / "example.py"
        script.write_text(block.text, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
        return
    code = compile(block.text, block.where, "exec")
    exec(code, {"__name__": "docs_example", "__file__": str(tmp_path / "example.py")})


# ---------------------------------------------------------------- nas commands


def commands(block: Block) -> list[list[str]]:
    """The `nas ...` command lines of a shell block, each as its arguments after `nas`."""
    text = re.sub(r"\\\n\s*", " ", block.text)  # continued lines
    found = []
    for line in text.splitlines():
        line = re.sub(r"^\s*\$\s+", "", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|<>()"):
                while command and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]):
                    command.pop(0)  # VAR=value before the command
                if command and Path(command[0]).name == "nas":
                    found.append(command[1:])
                command = [] if token not in ("<", ">", ">>") else ["redirect"]
            else:
                command.append(token)
    return found


NAS_COMMANDS = [(b, argv) for b in SHELL_BLOCKS for argv in commands(b)]


def test_the_commands_are_found():
    used = {argv[0] for _, argv in NAS_COMMANDS if argv}
    assert used >= {"search", "resume", "show", "report", "export", "spaces", "searchers",
                    "datasets", "bench"}, used


def _known_searchers() -> set[str]:
    import searchers
    from searchers import registry

    names = set(searchers.available()) | set(registry._LAZY)
    # Plugins of this repository's examples, whether or not they are installed here.
    for project in ROOT.glob("examples/*/pyproject.toml"):
        points = tomllib.loads(project.read_text(encoding="utf-8")).get("project", {})
        names |= set(points.get("entry-points", {}).get("nas.searchers", {}))
    return names


def _check_overrides(space: str, assignments: list[str]) -> None:
    """`--set` values build the space (with "auto": one of the families) as a search would."""
    import spaces
    from nas.errors import UserError

    overrides = dict(spaces.parse_assignment(a) for a in assignments)
    errors = []
    for family in spaces.available() if space == "auto" else [space]:
        try:
            spaces.get(family, **overrides)
            return
        except UserError as exc:
            errors.append(str(exc))
    raise AssertionError(f"--set {' '.join(assignments)}: {'; '.join(errors)}")


def _check_values(argv: list[str], args) -> None:
    """What argparse cannot know: the names and values the command refers to exist."""
    import spaces
    from nas.budget import Budget
    from nas.data import available as datasets
    from nas.objectives import parse_objectives
    from nas.problems import available as problems
    from spaces.updates import parse_update

    known = _known_searchers()
    command = argv[0]
    if command == "search":
        assert args.searcher == "auto" or args.searcher in known, args.searcher
        assert args.space == "auto" or args.space in spaces.available() \
            or args.space.endswith(".json"), args.space
        assert args.data in datasets() or "/" in args.data or "<" in args.data \
            or args.data.endswith((".npz", ".csv")), f"unknown dataset {args.data}"
        Budget.parse(args.budget)
        if args.trial_budget != "auto":
            Budget.parse(args.trial_budget)
        parse_objectives(args.objectives)
        if args.overrides:
            _check_overrides(args.space, args.overrides)
    if command == "resume":
        for update in args.space_update or []:
            parse_update(update)
        if args.budget:
            Budget.parse(args.budget)
    if command == "bench":
        for name in (args.searchers or "").split(","):
            assert not name or name in known, f"unknown searcher {name}"
        for name in (args.problems or "").split(","):
            assert not name or name in problems() or ":" in name, f"unknown problem {name}"


@pytest.mark.parametrize(("block", "argv"), NAS_COMMANDS,
                         ids=[f"{b.where}:{' '.join(a[:2])}" for b, a in NAS_COMMANDS])
def test_nas_command_parses(block, argv):
    from nas.cli import _join_values, _parser, main

    shown = "nas " + " ".join(argv)
    assert "..." not in argv, f"{block.where}: write the whole command: {shown}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = _parser().parse_args(_join_values(list(argv)))
    except SystemExit:
        pytest.fail(f"{block.where}: `{shown}` does not parse: {err.getvalue().strip()}")
    assert getattr(args, "func", None), f"{block.where}: `{shown}` names no command"
    _check_values(argv, args)
    if argv[0] in RUN:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        assert code == 0, f"{block.where}: `{shown}` failed: {err.getvalue().strip()}"
        assert out.getvalue().strip()


# ---------------------------------------------------------------- the README


def test_readme_links_exist():
    # mkdocs checks the links of docs/ (--strict); the README is not part of the site.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets
    for target in targets:
        if re.match(r"^[a-z]+://", target):
            continue
        assert (ROOT / target.split("#")[0]).exists(), f"README.md links to missing {target}"


def test_readme_keeps_the_command_that_ci_runs():
    # .ci/run runs the README's test command: the two must stay the same.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (command,) = re.findall(r"^#\s+(python3 -m venv \.venv && .*pytest.*)$", ci, re.MULTILINE)
    readme = blocks(ROOT / "README.md")
    assert any(b.text.strip() == command for b in readme), (
        "README.md must keep the test command of .ci/run in a code block of its own:\n"
        + command)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Run the tests (set-up included)" in text
