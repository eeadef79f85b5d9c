"""How long `otklik` commands take from start to exit (issue #13: each under 1 s).

Each command runs --runs times in a fresh interpreter; printed: the median wall time and the
median CPU time (user + system, which the machine's other load changes less). The figures
go to bench-results/cli_startup.json and docs/performance.md.

    .venv/bin/python scripts/bench/cli_startup.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from common import machine, write_result  # noqa: E402

OTKLIK = [sys.executable, "-m", "otklik.cli"]
VK = str(ROOT / "tests" / "payloads" / "vk" / "message_new.json")
TELEGRAM = str(ROOT / "tests" / "payloads" / "telegram" / "channel_post.json")
COMMANDS = {
    "otklik --help": ["--help"],
    "otklik triage --channel vk": ["triage", "--channel", "vk", VK],
    "otklik triage --channel telegram": ["triage", "--channel", "telegram", TELEGRAM],
    "otklik kb search": ["kb", "search", "в подъезде не горит свет"],
    "otklik telegram --help (imports aiogram)": ["telegram", "--help"],
}


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*OTKLIK, *argv], check=True, capture_output=True, env=os.environ.copy())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--only", default="", help="Run only the commands whose name contains this text."
    )
    args = parser.parse_args()
    results = {}
    for name, argv in COMMANDS.items():
        if args.only not in name:
            continue
        run_once(argv)  # warm the file cache and the byte-code
        times = [run_once(argv) for _ in range(args.runs)]
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        results[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
        print(f"{name:<45} wall {wall:6.3f} s   cpu {cpu:6.3f} s")
    write_result("cli_startup", {"machine": machine(), "runs": args.runs, "commands": results})


if __name__ == "__main__":
    main()
