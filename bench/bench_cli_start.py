"""Start-up time of the ``qalitel`` command, as real subprocesses.

Runs ``python -c pass`` (the interpreter alone), ``qalitel --help`` and ``qalitel tenants list
--json`` (on a freshly initialised embedded instance in a temporary folder) ``--runs`` times
each and prints the medians side by side: wall-clock time, and the CPU time the process used
(user + system, less sensitive to a busy machine). Nothing is asserted: this reports.

    .venv/bin/python bench/bench_cli_start.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    qalitel = str(BIN / "qalitel")
    with tempfile.TemporaryDirectory(prefix="qalitel-bench-cli-") as folder:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("QALITEL_")}
        env["QALITEL_INSTANCE_DIR"] = str(Path(folder) / "instance")
        subprocess.run([qalitel, "init"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "qalitel --help": [qalitel, "--help"],
            "qalitel tenants list --json": [qalitel, "tenants", "list", "--json"],
        }
        medians = {}
        for label, argv in commands.items():
            timed(argv, env)  # warm the file cache
            runs = [timed(argv, env) for _ in range(args.runs)]
            medians[label] = (statistics.median(wall for wall, _cpu in runs),
                              statistics.median(cpu for _wall, cpu in runs))
    width = max(len(label) for label in medians)
    print(f"medians of {args.runs} runs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<{width}}  {'wall (s)':>8}  {'CPU (s)':>8}")
    for label, (wall, cpu) in medians.items():
        print(f"{label:<{width}}  {wall:8.3f}  {cpu:8.3f}")


if __name__ == "__main__":
    main()
