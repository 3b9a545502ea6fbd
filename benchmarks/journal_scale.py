"""How long a large journal takes to resume and to report, and the report's peak memory.

Builds (once, in `--dir`) a TPE journal of `--trials` cheap trials that stops 10 trials before
its budget (as a kill would leave it), then times, each in a fresh process:

- `nas.resume` of a copy of it (the replay, plus the last 10 trials and the end), and
- `nas report` on the finished copy, the whole command, with its peak resident memory
  (``ru_maxrss``).

    python benchmarks/journal_scale.py --trials 10000 --dir runs/scale

Issue 21's targets at 10,000 trials: resume <= 10 s, report <= 5 s and <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEFT = 10  # trials the interrupted journal still has to run

BUILD = """
import sys
from ConfigSpace import ConfigurationSpace, Float
import nas
from nas.errors import SearchInterrupted

trials, path = int(sys.argv[1]), sys.argv[2]
space = ConfigurationSpace(space={n: Float(n, (-2.0, 2.0)) for n in "abcd"})
count = [0]

def objective(config, budget):
    count[0] += 1
    if count[0] > trials - int(sys.argv[3]):
        raise KeyboardInterrupt
    return sum((config[n] - 0.1 * i) ** 2 for i, n in enumerate("abcd"))

try:
    nas.optimize(objective, space, "tpe", f"{trials}trials", seed=0, storage=path)
except SearchInterrupted:
    pass
"""

RESUME = """
import sys, time
from ConfigSpace import ConfigurationSpace, Float
import nas

def objective(config, budget):
    return sum((config[n] - 0.1 * i) ** 2 for i, n in enumerate("abcd"))

start = time.perf_counter()
result = nas.resume(sys.argv[1], objective=objective, progress=False)
print(time.perf_counter() - start, len(result.trials))
"""

# The whole `nas report` command as a user runs it (interpreter start and imports included),
# in a child process of its own so that its peak memory is its alone.
REPORT = """
import resource, subprocess, sys, time

start = time.perf_counter()
subprocess.run([sys.executable, "-m", "nas", "report", sys.argv[1], "--out", sys.argv[2]],
               check=True, capture_output=True)
print(time.perf_counter() - start,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def _python(code: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                         "PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return done.stdout.split()


def main() -> None:
    """Build the journal if needed, then time resume and report; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("runs/scale"))
    parser.add_argument("--baseline", action="store_true",
                        help="also resume a copy without the journaled random states (every "
                             "ask proposed again, as before fast replay)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = args.dir / f"tpe-{args.trials}.db"
    built = None
    if not source.exists():
        start = time.perf_counter()
        _python(BUILD, str(args.trials), str(source), str(LEFT))
        built = time.perf_counter() - start
    copy = args.dir / "resumed.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copy(source, copy)
    resume_s, n = _python(RESUME, str(copy))
    report_s, report_mb = _python(REPORT, str(copy), str(args.dir / "report"))
    row = {"trials": int(n), "build_s": built, "resume_s": float(resume_s),
           "report_s": float(report_s), "report_peak_mb": float(report_mb)}
    if args.baseline:
        slow = args.dir / "full-replay.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{slow}{suffix}").unlink(missing_ok=True)
        shutil.copy(source, slow)
        _python("import sys; from nas.storage import Storage; s = Storage.open(sys.argv[1]); "
                "s.set_meta('searcher_states', []); s.close()", str(slow))
        row["resume_full_replay_s"] = float(_python(RESUME, str(slow))[0])
    print(json.dumps(row))


if __name__ == "__main__":
    main()
