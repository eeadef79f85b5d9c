"""Benchmark of the embedded NLU on the held-out phrasings (a benchmark, not a timed test).

    .venv/bin/python scripts/bench/nlu_bench.py [--out PATH] [--rounds N] [--loo N]

Prints a table and writes JSON: load/index time, memory (tracemalloc peak while loading,
and what stays allocated), latency per message p50/p99, top-1/top-3 accuracy, hand-off.
Load time is the first load in the process (YAML, stemming, index), after imports; memory is
of a second load (the index and entries), measured with tracemalloc.
``--loo N`` adds a leave-one-out accuracy on N of the entries' own phrasings (slower: the
index is rebuilt for each one), a harder and fairer number than the held-out set.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import tracemalloc
from pathlib import Path

from knowledge_base.entries import load_entries
from knowledge_base.heldout import evaluate, load_heldout
from knowledge_base.nlu import EmbeddedNLU
from knowledge_base.search import KnowledgeBase, load_search_config, load_synonym_groups


def leave_one_out(samples: int, seed: int = 7) -> float:
    """Top-1 accuracy when each sampled phrasing is removed from the index before the query."""
    entries = load_entries()
    groups = load_synonym_groups()
    config = load_search_config()
    cases = [(i, j) for i, entry in enumerate(entries) for j in range(len(entry.phrasings))]
    random.Random(seed).shuffle(cases)
    correct = 0
    for i, j in cases[:samples]:
        query = entries[i].phrasings[j]
        kept = [p for n, p in enumerate(entries[i].phrasings) if n != j]
        reduced = list(entries)
        reduced[i] = entries[i].model_copy(update={"phrasings": kept})
        kb = KnowledgeBase(reduced, config=config, synonym_groups=groups)
        correct += kb.search(query, k=1)[0].entry_id == entries[i].id
    return round(correct / max(1, min(samples, len(cases))), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/bench/nlu_bench.json"))
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds over the set")
    parser.add_argument("--loo", type=int, default=0, help="leave-one-out samples (0 = skip)")
    args = parser.parse_args()

    # Time without tracemalloc (it slows allocation down), then measure memory on a second load.
    started = time.perf_counter()
    EmbeddedNLU.load()
    load_seconds = time.perf_counter() - started
    tracemalloc.start()
    nlu = EmbeddedNLU.load()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    heldout = load_heldout()
    evaluation = evaluate(nlu, heldout, rounds=args.rounds)
    result = {
        "backend": nlu.name,
        "python": platform.python_version(),
        "entries": len(nlu.kb.entries),
        "threshold": nlu.threshold,
        "load_and_index_seconds": round(load_seconds, 3),
        "memory_peak_mb": round(peak / 2**20, 2),
        "memory_retained_mb": round(retained / 2**20, 2),
        **evaluation.model_dump(),
    }
    if args.loo:
        result["leave_one_out_top1"] = leave_one_out(args.loo)
        result["leave_one_out_samples"] = args.loo

    rows = [(key, value) for key, value in result.items() if key != "misses"]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for miss in evaluation.misses:
        print(f"miss: {miss['text']!r} expected {miss['expected']}, got {miss['got']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
