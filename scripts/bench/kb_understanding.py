"""How well the built-in knowledge base understands colloquial messages (not a timed test).

    .venv/bin/python scripts/bench/kb_understanding.py
        [--split test|train|holdout|holdout2] [--cases] [--out PATH]

Asks the knowledge base every message of the evaluation set (``knowledge_base/eval``) and
prints right / wrong / handed off on the colloquial messages and answered on the off-topic
ones, plus the right entry ranked first and the latency per message. ``test`` (the default)
is the held-out part; ``train`` is what the lexicon and the calibration were tuned on;
``holdout`` (``eval/holdout.yaml``) is a second held-out split, ``holdout2``
(``eval/holdout2.yaml``) a third, written after the others had been looked at while tuning:
both are only measured, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge_base.evalset import SPLITS, measure, split_messages  # noqa: E402
from knowledge_base.search import KnowledgeBase  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--cases", action="store_true", help="list every miss")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    kb = KnowledgeBase.load()
    load_seconds = time.perf_counter() - started
    outcome = measure(kb, args.split)
    colloquial, offtopic = split_messages(args.split)
    texts = [item.text for item in colloquial] + offtopic
    latencies = []
    cpu_started = time.process_time()
    for _ in range(3):
        for text in texts:
            began = time.perf_counter()
            kb.answer(text)
            latencies.append((time.perf_counter() - began) * 1000)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(latencies)
    latencies.sort()
    n = outcome.on_topic
    figures = {
        "split": args.split,
        "entries": len(kb.entries),
        "on_topic": n,
        "right": f"{outcome.right} ({outcome.right_rate:.1%})",
        "wrong": f"{outcome.wrong} ({outcome.wrong_rate:.1%})",
        "handed_off": f"{outcome.handed_off} ({outcome.rate(outcome.handed_off, n):.1%})",
        "right_entry_first": f"{outcome.right_first} ({outcome.rate(outcome.right_first, n):.1%})",
        "off_topic": outcome.off_topic,
        "off_topic_answered": (
            f"{outcome.off_topic_answered} ({outcome.off_topic_answered_rate:.1%})"
        ),
        "load_and_index_seconds": round(load_seconds, 3),
        "cpu_ms_per_message": round(cpu_ms, 3),
        "latency_ms_p50": round(statistics.median(latencies), 3),
        "latency_ms_p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.cases:
        for case in outcome.wrong_cases:
            print(f"wrong: {case['text']!r} expected {case['expected']}, got {case['got']}")
        for case in outcome.handed_off_cases:
            print(
                f"handed off: {case['text']!r} expected {case['expected']}, first {case['first']}"
            )
        for case in outcome.off_topic_cases:
            print(f"off-topic answered: {case['text']!r} got {case['got']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
