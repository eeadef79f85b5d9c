"""Dump every ranking detail of the knowledge base for a fixed set of messages, to compare
two versions of the search code byte for byte (a check for speed-ups that must not change
any answer).

    PYTHONHASHSEED=0 .venv/bin/python scripts/bench/kb_answers.py OUT.json

Run it with the same ``PYTHONHASHSEED`` on both versions: the query terms are a set, and
their order (hence the last bits of the coverage sums) depends on the seed. The messages:
the colloquial and off-topic evaluation sets, the held-out set, two phrasings of each of
the first 80 entries and a few edge cases.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot_turn import messages  # type: ignore[import-not-found]

from knowledge_base.heldout import load_heldout
from knowledge_base.search import KnowledgeBase


def main() -> None:
    kb = KnowledgeBase.load()
    texts = messages()
    heldout = load_heldout()
    texts += [p.text for p in heldout.phrasings] + list(heldout.off_topic)
    for entry in kb.entries[:80]:
        texts.extend(entry.phrasings[:2])
    texts += ["", "   ", "ул. Ленина д 5 кв 3 89001234567", "прописька в кв", "ёлки палки"]
    out = []
    for text in texts:
        ranking = kb.rank(text, k=5)
        answer = kb.answer(text)
        hits = [
            (h.entry_id, h.score, h.confidence, h.bm25, h.ngram_similarity, h.coverage, h.matched)
            for h in ranking.hits
        ]
        chosen = answer.hit.entry_id if answer.hit else None
        out.append([text, ranking.off_topic, ranking.features, hits, answer.reason, chosen])
    Path(sys.argv[1]).write_text(json.dumps(out, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{len(out)} messages")


if __name__ == "__main__":
    main()
