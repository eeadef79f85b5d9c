"""Embedded NLU vs Rasa on the same held-out phrasings: accuracy, latency, memory.

Usage (from the repository root, after ``make install``)::

    .venv/bin/python scripts/bench/nlu_vs_rasa.py            # sets up, trains, starts Rasa
    .venv/bin/python scripts/bench/nlu_vs_rasa.py --rasa-url http://127.0.0.1:5005 --rasa-pid PID

Held-out phrasings: ``knowledge_base/heldout.yaml`` (``phrasings`` with the expected entry id,
and ``off_topic`` messages that no entry answers: expected "no intent"). Neither backend was
trained on them. Prints a table and writes JSON to ``bench-results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge_base.entries import load_entries  # noqa: E402
from knowledge_base.heldout import HELDOUT_FILE, load_heldout  # noqa: E402
from knowledge_base.nlu_types import NLUBackend, NLUResult  # noqa: E402
from knowledge_base.rasa_nlu import RasaNLU  # noqa: E402

RASA_SCRIPTS = ROOT / "scripts" / "rasa"


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process, from /proc (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        #: Other work on the machine skews latency: the load average when the run ended.
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


#: (message, expected entry id or None for "hand off")
Case = tuple[str, str | None]


def evaluate(backend: NLUBackend, cases: list[Case], repeat: int) -> dict[str, Any]:
    latencies: list[float] = []
    misses: list[dict[str, Any]] = []
    for text, expected in cases:
        result: NLUResult | None = None
        for _ in range(repeat):
            started = time.perf_counter()
            result = backend.parse(text)
            latencies.append((time.perf_counter() - started) * 1000)
        assert result is not None
        if result.intent != expected:
            misses.append({"text": text, "expected": expected, "got": result.intent})
    in_scope = [case for case in cases if case[1] is not None]
    missed_in_scope = sum(1 for miss in misses if miss["expected"] is not None)
    off_topic = len(cases) - len(in_scope)
    return {
        "accuracy": round(1 - len(misses) / len(cases), 4),
        "correct": len(cases) - len(misses),
        "total": len(cases),
        "in_scope_accuracy": round(1 - missed_in_scope / len(in_scope), 4),
        "off_topic_handed_off": f"{off_topic - (len(misses) - missed_in_scope)}/{off_topic}",
        "latency_ms_p50": round(statistics.median(latencies), 3),
        "latency_ms_p99": round(percentile(latencies, 99), 3),
        "latency_ms_mean": round(statistics.fmean(latencies), 3),
        "misses": misses,
    }


def measure_embedded(cases: list[Case], repeat: int) -> dict[str, Any]:
    from knowledge_base.nlu import EmbeddedNLU

    rss_before = rss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    backend = EmbeddedNLU.load()
    backend.parse("прогрев")
    load_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures = evaluate(backend, cases, repeat)
    return {
        **figures,
        "load_s": round(load_s, 3),
        "tracemalloc_peak_mib": round(peak / 2**20, 1),
        "rss_growth_mib": round((rss_kib() - rss_before) / 1024, 1),
        "process_rss_mib": round(rss_kib() / 1024, 1),
    }


def measure_rasa(url: str, pid: int | None, cases: list[Case], repeat: int) -> dict[str, Any]:
    with RasaNLU(url, timeout=30, entries=load_entries()) as backend:
        backend.parse("прогрев")
        figures = evaluate(backend, cases, repeat)
    return {**figures, "server_rss_mib": round(rss_kib(pid) / 1024, 1) if pid else None}


def run_script(name: str, *args: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", str(RASA_SCRIPTS / name), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, time.perf_counter() - started


def start_rasa() -> tuple[str, int, dict[str, float]]:
    timings = {}
    _, timings["setup_s"] = run_script("setup.sh")
    _, timings["train_s"] = run_script("train.sh")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out, timings["server_start_s"] = run_script("serve.sh", str(port))
    url, pid = out.split()[-2:]
    return url, int(pid), {k: round(v, 1) for k, v in timings.items()}


def print_table(results: dict[str, dict[str, Any]]) -> None:
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("accuracy, all", lambda r: f"{r['accuracy']:.1%} ({r['correct']}/{r['total']})"),
        ("accuracy, in KB", lambda r: f"{r['in_scope_accuracy']:.1%}"),
        ("off-topic handed", lambda r: r["off_topic_handed_off"]),
        ("latency p50, ms", lambda r: r["latency_ms_p50"]),
        ("latency p99, ms", lambda r: r["latency_ms_p99"]),
        (
            "memory, MiB",
            lambda r: (
                f"RSS +{r['rss_growth_mib']} (tracemalloc {r['tracemalloc_peak_mib']})"
                if "rss_growth_mib" in r
                else f"server RSS {r.get('server_rss_mib')}"
            ),
        ),
    ]
    names = list(results)
    print(f"{'':18}" + "".join(f"{name:>36}" for name in names))
    for label, cell in rows:
        print(f"{label:18}" + "".join(f"{cell(results[n])!s:>36}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", type=Path, default=HELDOUT_FILE)
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", ""))
    parser.add_argument("--rasa-pid", type=int, help="Rasa server process, for its memory")
    parser.add_argument("--repeat", type=int, default=3, help="parses of each phrasing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "nlu_vs_rasa.json")
    args = parser.parse_args()

    loaded = load_heldout(args.heldout)
    cases: list[Case] = [(p.text, p.expected) for p in loaded.phrasings]
    cases += [(text, None) for text in loaded.off_topic]
    results: dict[str, dict[str, Any]] = {"embedded": measure_embedded(cases, args.repeat)}
    own_pid = None
    rasa_timings: dict[str, float] = {}
    url, pid = args.rasa_url, args.rasa_pid
    if not url:
        url, own_pid, rasa_timings = start_rasa()
        pid = own_pid
    try:
        results["rasa"] = {**measure_rasa(url, pid, cases, args.repeat), **rasa_timings}
    finally:
        if own_pid:
            os.kill(own_pid, signal.SIGTERM)

    print_table(results)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "heldout": str(args.heldout),
        "repeat": args.repeat,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
