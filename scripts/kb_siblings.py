"""List the pairs of knowledge base entries whose questions and phrasings are close (issue #13).

    .venv/bin/python scripts/kb_siblings.py [--top N]

A «sibling audit»: two entries asked about in nearly the same words (cold radiators in one
flat and a whole house without heating after an accident; a pothole and a car damaged in it)
are where the search confuses one for the other. For every pair of entries it prints two
signals, over the whole knowledge base:

- ``cosine``: the cosine of the entries' question and phrasing terms (lemma stems, TF-IDF);
- ``rival``: over the question and phrasings of either entry, the highest score of the other
  entry relative to the entry's own (1.0: as good a match as the entry itself).

The closest pairs come first. The remedy is KB content, not code: phrasings on both entries
that state what tells them apart, in the words citizens use.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge_base.search import KnowledgeBase  # noqa: E402


def _vectors(kb: KnowledgeBase) -> dict[str, dict[str, float]]:
    """Per entry: the TF-IDF vector of its question and phrasings, unit length."""
    result: dict[str, dict[str, float]] = {}
    for entry in kb.entries:
        counts: Counter[str] = Counter()
        for text in [entry.question, *entry.phrasings]:
            counts.update(t for t in kb.analyzer.terms(text) if not t.startswith("#"))
        vector = {t: c * kb._idf.get(t, 0.0) for t, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        result[entry.id] = {t: v / norm for t, v in vector.items()}
    return result


def _rivals(kb: KnowledgeBase) -> dict[frozenset[str], float]:
    """Per pair: how close the other entry came to an entry on the entry's own texts."""
    rival: dict[frozenset[str], float] = {}
    for entry in kb.entries:
        for text in [entry.question, *entry.phrasings]:
            hits = kb.search(text, k=4)
            own = next((h.score for h in hits if h.entry_id == entry.id), None)
            if not own:
                continue
            for hit in hits:
                if hit.entry_id != entry.id:
                    pair = frozenset((entry.id, hit.entry_id))
                    rival[pair] = max(rival.get(pair, 0.0), hit.score / own)
    return rival


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--top", type=int, default=40, help="how many pairs to print")
    args = parser.parse_args()
    kb = KnowledgeBase.load()
    vectors = _vectors(kb)
    rivals = _rivals(kb)
    rows: list[tuple[float, float, float, str, str]] = []
    for a, b in combinations(sorted(vectors), 2):
        va, vb = vectors[a], vectors[b]
        cosine = sum(w * vb.get(t, 0.0) for t, w in va.items())
        rival = rivals.get(frozenset((a, b)), 0.0)
        if cosine or rival:
            rows.append((cosine + rival, cosine, rival, a, b))
    rows.sort(reverse=True)
    print(f"{'cosine':>6}  {'rival':>5}  pair")
    for _, cosine, rival, a, b in rows[: args.top]:
        print(f"{cosine:6.2f}  {rival:5.2f}  {a}  ~  {b}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
