"""Gaps in the knowledge base: group the questions the bot could not answer into clusters.

Each question becomes a weighted set of features: the first six letters of the dictionary
form (pymorphy3) of each meaningful word, so that «путёвку», «путевки» and «путёвка» or
«чипировать» and «чипирование» count as one, with rare features weighted up (IDF over the
questions being grouped, so that «подскажите» or «добрый» weigh next to nothing). Stem
bigrams and plain Snowball stems were measured and grouped worse (docs/knowledge-base.md).
Questions are taken most typical first (the highest summed
similarity to the others) and each joins the cluster whose centroid is most similar to it
(cosine) if that similarity reaches ``threshold``, else opens a new cluster; a second pass
moves each question to its best centroid once all exist. No external service, everything in
memory: 2,200 questions took 1.8 s on the loaded 2-core machine.

For each cluster: how many questions, examples (the most typical first), the words that
characterise it, and the nearest knowledge-base entry with its score (a low score means the
KB lacks the topic; a high one, that an existing entry needs the cluster's phrasings).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from knowledge_base.readability import lemma
from knowledge_base.russian import STOPWORDS, words
from knowledge_base.search import KnowledgeBase

#: Cosine similarity to a cluster's centroid from which a question joins it (chosen on
#: knowledge_base/eval/gaps.yaml: 0.1 joins different topics, 0.2 splits one topic).
THRESHOLD = 0.15
#: Letters of the dictionary form kept (related words share their first six letters).
PREFIX = 6


def features(text: str) -> Counter[str]:
    return Counter(
        lemma(t.lower)[:PREFIX]
        for t in words(text)
        if t.lower not in STOPWORDS and len(t.lower) > 1 and any(c.isalpha() for c in t.lower)
    )


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b.get(key, 0.0) for key, weight in a.items())
    if dot == 0.0:
        return 0.0
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm


@dataclass
class Cluster:
    members: list[int] = field(default_factory=list)  # indexes into the questions
    centroid: dict[str, float] = field(default_factory=dict)

    def add(self, index: int, vector: dict[str, float]) -> None:
        self.members.append(index)
        for key, weight in vector.items():
            self.centroid[key] = self.centroid.get(key, 0.0) + weight


@dataclass(frozen=True)
class Gap:
    """One cluster as shown to the people who write answers."""

    count: int
    examples: list[str]
    keywords: list[str]
    nearest_entry: str | None
    nearest_question: str | None
    nearest_score: float
    members: list[int]


def cluster(questions: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """Indexes of ``questions`` grouped into clusters, biggest first; within a cluster the most
    typical question first. Questions with no meaningful word form no cluster."""
    raw = [features(q) for q in questions]
    seen_in: Counter[str] = Counter()
    for found in raw:
        seen_in.update(found.keys())
    total = len(questions)
    vectors = [
        {k: (1 + math.log(v)) * math.log(1 + total / seen_in[k]) for k, v in found.items()}
        for found in raw
    ]
    usable = [i for i, v in enumerate(vectors) if v]
    centrality = {i: 0.0 for i in usable}
    # typicality over a bounded sample: every question against up to 400 others
    sample = usable[:: max(1, len(usable) // 400)]
    for i in usable:
        centrality[i] = sum(_cosine(vectors[i], vectors[j]) for j in sample if j != i)
    order = sorted(usable, key=lambda i: (-centrality[i], i))
    clusters: list[Cluster] = []
    for i in order:
        best, score = _best(clusters, vectors[i])
        if best is not None and score >= threshold:
            best.add(i, vectors[i])
        else:
            fresh = Cluster()
            fresh.add(i, vectors[i])
            clusters.append(fresh)
    # second pass: each question to its best centroid, now that all exist
    final: dict[int, list[int]] = {}
    centroids = [c.centroid for c in clusters]
    for i in order:
        scores = [_cosine(vectors[i], c) for c in centroids]
        home = max(range(len(scores)), key=lambda n: (scores[n], -n))
        final.setdefault(home, []).append(i)
    groups = sorted(final.values(), key=lambda g: (-len(g), g[0]))
    return [sorted(g, key=lambda i: (-centrality[i], i)) for g in groups]


def _best(clusters: list[Cluster], vector: dict[str, float]) -> tuple[Cluster | None, float]:
    best, score = None, 0.0
    for candidate in clusters:
        similarity = _cosine(vector, candidate.centroid)
        if similarity > score:
            best, score = candidate, similarity
    return best, score


def find_gaps(
    questions: Sequence[str],
    kb: KnowledgeBase | None = None,
    *,
    threshold: float = THRESHOLD,
    examples: int = 5,
) -> list[Gap]:
    """The clusters of ``questions`` with their examples, keywords and nearest entry."""
    gaps = []
    for members in cluster(questions, threshold):
        texts = [questions[i] for i in members]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(features(text))
        keywords = [k for k, _ in counts.most_common(4)]
        nearest, question, score = None, None, 0.0
        if kb is not None:
            hits = kb.search(" ".join(texts[:3]), k=1)
            if hits:
                nearest, question, score = hits[0].entry_id, hits[0].entry.question, hits[0].score
        gaps.append(
            Gap(
                count=len(members), examples=texts[:examples], keywords=keywords,
                nearest_entry=nearest, nearest_question=question,
                nearest_score=round(float(score), 3), members=members,
            )
        )  # fmt: skip
    return gaps


def purity(clusters: Sequence[Sequence[int]], labels: Sequence[str]) -> tuple[float, float]:
    """(purity, inverse purity) of ``clusters`` against the true ``labels`` of the questions:
    how much of each cluster is one topic, and how much of each topic lands in one cluster."""
    total = sum(len(c) for c in clusters)
    if not total:
        return 0.0, 0.0
    pure = sum(Counter(labels[i] for i in c).most_common(1)[0][1] for c in clusters if c)
    by_label: dict[str, Counter[int]] = {}
    for n, members in enumerate(clusters):
        for i in members:
            by_label.setdefault(labels[i], Counter())[n] += 1
    inverse = sum(counter.most_common(1)[0][1] for counter in by_label.values())
    return pure / total, inverse / total
