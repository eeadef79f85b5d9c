"""Russian-aware FAQ retrieval: BM25 over word stems fused with character n-grams.

* Stems (Snowball) make «прописку», «прописки», «прописка» one term.
* Synonym groups (``synonyms.yaml`` and each entry's ``a = b`` synonyms) add a shared group
  term, so «УК» finds entries written with «управляющая компания».
* Character 3- and 4-grams catch typos and clipped words («прописька», «коммуналка»).

Ranking fuses the three signals by weight. Confidence is absolute (0..1): how much of the
query the entry covers (IDF-weighted) and how close the nearest phrasing is. Below the
configured threshold the bot does not guess; it hands the message to an operator.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from knowledge_base.datafile import DataFileError, load_model, read_yaml_list
from knowledge_base.entities import extract_entities
from knowledge_base.entries import ENTRIES_DIR, KBEntry, load_entries
from knowledge_base.russian import STOPWORDS, stem, words

HERE = Path(__file__).resolve().parent
SEARCH_CONFIG_FILE = HERE / "search.yaml"
SYNONYMS_FILE = HERE / "synonyms.yaml"


class SearchConfig(BaseModel):
    #: Below this confidence the bot hands off to an operator instead of answering.
    handoff_threshold: float = 0.45
    #: Ranking weights of the fused score.
    weight_bm25: float = 0.4
    weight_ngrams: float = 0.3
    weight_coverage: float = 0.3
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    #: How much a word of the answer counts against a word of the question (0 = ignore answers).
    answer_weight: float = 0.4
    ngram_sizes: list[int] = Field(default_factory=lambda: [3, 4])


class Hit(BaseModel):
    entry_id: str
    #: Fused ranking score (relative to the other hits of the same query).
    score: float
    #: Absolute 0..1 confidence that this entry answers the query.
    confidence: float
    bm25: float
    ngram_similarity: float
    coverage: float
    #: The question or phrasing of the entry closest to the query.
    matched: str
    entry: KBEntry


class Answer(BaseModel):
    """What the bot should do with a message: answer with ``hit`` or hand off (``reason``)."""

    hit: Hit | None
    handoff: bool
    reason: str | None = None
    hits: list[Hit] = Field(default_factory=list)


def load_search_config(path: Path = SEARCH_CONFIG_FILE) -> SearchConfig:
    return load_model(path, SearchConfig)


def load_synonym_groups(path: Path = SYNONYMS_FILE) -> list[list[str]]:
    """Groups of words or phrases that mean the same thing, from ``synonyms.yaml``."""
    data = read_yaml_list(path, "lists of synonyms")
    if not all(isinstance(group, list) for group in data):
        raise DataFileError(f"{path}: expected a list of lists of synonyms")
    return [[str(item) for item in group] for group in data]


def entry_synonym_groups(entry: KBEntry) -> tuple[list[list[str]], list[str]]:
    """An entry's synonyms: ``"a = b = c"`` is a group; a plain item is an extra keyword."""
    groups: list[list[str]] = []
    keywords: list[str] = []
    for item in entry.synonyms:
        if "=" in item:
            groups.append([part.strip() for part in item.split("=") if part.strip()])
        else:
            keywords.append(item)
    return groups, keywords


class Analyzer:
    """Turns text into retrieval terms: stems plus synonym-group terms."""

    def __init__(self, groups: Iterable[list[str]]) -> None:
        #: First stem of a member → (all its stems, the group term).
        self._members: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for number, group in enumerate(groups):
            for member in group:
                member_stems = tuple(self._stems(member))
                if member_stems:
                    self._members[member_stems[0]].append((member_stems, f"#syn{number}"))

    @staticmethod
    def _stems(text: str) -> list[str]:
        return [stem(t.lower) for t in words(text) if t.lower not in STOPWORDS]

    def terms(self, text: str) -> list[str]:
        base = self._stems(text)
        extra: set[str] = set()
        for i, first in enumerate(base):
            for member, term in self._members.get(first, ()):
                if tuple(base[i : i + len(member)]) == member:
                    extra.add(term)
        return base + sorted(extra)


def char_ngrams(text: str, sizes: Iterable[int]) -> Counter[str]:
    """Character n-grams of each meaningful word, padded with spaces («прописка» → « пр»...)."""
    grams: Counter[str] = Counter()
    for token in words(text):
        low = token.lower
        if low in STOPWORDS:
            continue
        padded = f" {low} "
        for n in sizes:
            for i in range(max(1, len(padded) - n + 1)):
                grams[padded[i : i + n]] += 1
    return grams


@dataclass
class _Phrase:
    entry_index: int
    text: str
    vector: dict[str, float]


class KnowledgeBase:
    """The FAQ entries with an index built in memory (a few milliseconds for 100 entries)."""

    def __init__(
        self,
        entries: list[KBEntry],
        *,
        config: SearchConfig | None = None,
        synonym_groups: list[list[str]] | None = None,
    ) -> None:
        self.entries = entries
        self.config = config or SearchConfig()
        self.by_id = {entry.id: entry for entry in entries}
        groups = list(synonym_groups or [])
        docs_keywords: list[list[str]] = []
        for entry in entries:
            entry_groups, keywords = entry_synonym_groups(entry)
            groups.extend(entry_groups)
            docs_keywords.append(keywords + [m for g in entry_groups for m in g])
        self.analyzer = Analyzer(groups)
        self._build_bm25(docs_keywords)
        self._build_deletions()
        self._build_ngrams()

    @classmethod
    def load(
        cls,
        directory: Path = ENTRIES_DIR,
        *,
        config: SearchConfig | None = None,
        synonyms_file: Path = SYNONYMS_FILE,
    ) -> KnowledgeBase:
        return cls(
            load_entries(directory),
            config=config or load_search_config(),
            synonym_groups=load_synonym_groups(synonyms_file),
        )

    # --- index ---------------------------------------------------------------------------

    def _texts(self, entry: KBEntry) -> list[str]:
        return [entry.question, *entry.phrasings]

    def _build_bm25(self, docs_keywords: list[list[str]]) -> None:
        #: Per entry: term → weighted frequency. Answer words count less than question words.
        self._doc_terms: list[dict[str, float]] = []
        weight = self.config.answer_weight
        for entry, keywords in zip(self.entries, docs_keywords, strict=True):
            terms: dict[str, float] = defaultdict(float)
            for text in [*self._texts(entry), *keywords]:
                for term in self.analyzer.terms(text):
                    terms[term] += 1.0
            if weight:
                for text in (entry.short_answer, entry.full_answer):
                    for term in self.analyzer.terms(text):
                        terms[term] += weight
            self._doc_terms.append(dict(terms))
        self._doc_len = [sum(c.values()) for c in self._doc_terms]
        self._avg_len = sum(self._doc_len) / max(1, len(self._doc_len))
        df: Counter[str] = Counter()
        for counts in self._doc_terms:
            df.update(counts.keys())
        n = len(self._doc_terms)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._max_idf = math.log(1 + (n + 0.5) / 0.5)
        self._corrections: dict[str, str] = {}
        self._postings: dict[str, list[int]] = defaultdict(list)
        for index, counts in enumerate(self._doc_terms):
            for term in counts:
                self._postings[term].append(index)

    def _build_ngrams(self) -> None:
        sizes = self.config.ngram_sizes
        raw: list[tuple[int, str, Counter[str]]] = []
        df: Counter[str] = Counter()
        for index, entry in enumerate(self.entries):
            for text in self._texts(entry):
                grams = char_ngrams(text, sizes)
                raw.append((index, text, grams))
                df.update(grams.keys())
        n = len(raw)
        self._gram_idf = {g: math.log((1 + n) / (1 + f)) + 1 for g, f in df.items()}
        #: A gram no phrasing has is as rare as can be (it lowers the query's similarity).
        self._unseen_gram_idf = math.log(1 + n) + 1
        self._phrases: list[_Phrase] = []
        #: gram → (phrase index, the gram's weight in that phrase): one pass per query gram.
        self._gram_postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for index, text, grams in raw:
            vector = self._weigh(grams)
            self._phrases.append(_Phrase(index, text, vector))
            for gram, weight in vector.items():
                self._gram_postings[gram].append((len(self._phrases) - 1, weight))

    def _weigh(self, grams: Counter[str]) -> dict[str, float]:
        unseen = self._unseen_gram_idf
        vector = {g: (1 + math.log(c)) * self._gram_idf.get(g, unseen) for g, c in grams.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {g: v / norm for g, v in vector.items()}

    # --- query ---------------------------------------------------------------------------

    def search(self, text: str, k: int = 5) -> list[Hit]:
        """Top ``k`` entries for ``text``, best first, each with a score and a confidence.

        Addresses, dates, phones and appeal numbers are masked first: they say where and
        when, not what about, and would only dilute the confidence.
        """
        text = mask_entities(text)
        terms = [self._correct(term) for term in self.analyzer.terms(text)]
        if not terms:
            return []
        bm25 = self._bm25_scores(terms)
        ngram, matched = self._ngram_scores(text)
        candidates = set(bm25) | set(ngram)
        if not candidates:
            return []
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        # A number the index never saw («дом 14») is not a topic word.
        query_terms = {t for t in terms if t in self._idf or not t.isdigit()}
        query_weight = sum(self._idf.get(t, self._max_idf) for t in query_terms)
        cfg = self.config
        # Score every candidate with plain floats; only the top k become Hit objects (with a
        # few hundred entries nearly all are candidates, and building models dominated).
        scored: list[tuple[float, str, int, float, float]] = []
        for index in candidates:
            doc = self._doc_terms[index]
            covered = sum(self._idf[t] * min(1.0, doc[t]) for t in query_terms if t in doc)
            coverage = covered / query_weight if query_weight else 0.0
            similarity = ngram.get(index, 0.0)
            score = (
                cfg.weight_bm25 * bm25.get(index, 0.0) / top_bm25
                + cfg.weight_ngrams * similarity
                + cfg.weight_coverage * coverage
            )
            scored.append((round(score, 4), self.entries[index].id, index, coverage, similarity))
        scored.sort(key=lambda item: (-item[0], item[1]))
        hits: list[Hit] = []
        for score, entry_id, index, coverage, similarity in scored[:k]:
            entry = self.entries[index]
            hits.append(
                Hit(
                    entry_id=entry_id,
                    score=score,
                    confidence=round(min(1.0, 0.5 * coverage + 0.5 * similarity), 4),
                    bm25=round(bm25.get(index, 0.0), 4),
                    ngram_similarity=round(similarity, 4),
                    coverage=round(coverage, 4),
                    matched=matched.get(index, entry.question),
                    entry=entry,
                )
            )
        return hits

    def answer(self, text: str) -> Answer:
        """The entry to answer with, or a hand-off to an operator with the reason."""
        if not text.strip():
            return Answer(hit=None, handoff=True, reason="empty")
        hits = self.search(text, k=5)
        if not hits:
            return Answer(hit=None, handoff=True, reason="no_match", hits=hits)
        best = hits[0]
        if best.confidence < self.config.handoff_threshold:
            return Answer(hit=None, handoff=True, reason="low_confidence", hits=hits)
        return Answer(hit=best, handoff=False, hits=hits)

    def _correct(self, term: str) -> str:
        """A misspelt stem («прописьк») → the closest known stem («прописк»), if close enough."""
        if term in self._idf or len(term) < 4 or term.isdigit():
            return term
        if term not in self._corrections:
            limit = _typo_limit(term)
            best, best_distance = term, limit + 1
            candidates: set[str] = set()
            for variant in deletions(term, limit):
                candidates.update(self._deletions.get(variant, ()))
            for known in sorted(candidates):
                distance = bounded_levenshtein(term, known, limit)
                if distance < best_distance:
                    best, best_distance = known, distance
            self._corrections[term] = best
        return self._corrections[term]

    def _build_deletions(self) -> None:
        """Known stems by the strings left after deleting 1-2 letters (SymSpell): two words
        within edit distance k share such a string, so a typo is looked up, not scanned for."""
        index: dict[str, list[str]] = defaultdict(list)
        for known in self._idf:
            if known.startswith("#") or known.isdigit():
                continue
            for variant in deletions(known, _typo_limit(known)):
                index[variant].append(known)
        self._deletions = dict(index)

    def _bm25_scores(self, terms: list[str]) -> dict[int, float]:
        k1, b = self.config.bm25_k1, self.config.bm25_b
        scores: dict[int, float] = defaultdict(float)
        for term in set(terms):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for index in self._postings[term]:
                tf = self._doc_terms[index][term]
                norm = k1 * (1 - b + b * self._doc_len[index] / self._avg_len)
                scores[index] += idf * tf * (k1 + 1) / (tf + norm)
        return scores

    def _ngram_scores(self, text: str) -> tuple[dict[int, float], dict[int, str]]:
        query = self._weigh(char_ngrams(text, self.config.ngram_sizes))
        dots: dict[int, float] = defaultdict(float)
        for gram, weight in query.items():
            for phrase_index, phrase_weight in self._gram_postings.get(gram, ()):
                dots[phrase_index] += weight * phrase_weight
        best: dict[int, float] = {}
        matched: dict[int, str] = {}
        for phrase_index, similarity in dots.items():
            phrase = self._phrases[phrase_index]
            if similarity > best.get(phrase.entry_index, 0.0):
                best[phrase.entry_index] = similarity
                matched[phrase.entry_index] = phrase.text
        return best, matched


def mask_entities(text: str) -> str:
    """``text`` with every entity span blanked out (offsets stay the same)."""
    chars = list(text)
    for entity in extract_entities(text):
        chars[entity.start : entity.end] = " " * (entity.end - entity.start)
    return "".join(chars)


def _typo_limit(term: str) -> int:
    """Edits allowed to call a word a typo of another: 1, or 2 for words of 7+ letters."""
    return 1 if len(term) < 7 else 2


def deletions(word: str, depth: int) -> set[str]:
    """``word`` and every string made by deleting up to ``depth`` letters from it."""
    result = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        result |= frontier
    return result


def bounded_levenshtein(a: str, b: str, limit: int) -> int:
    """Edit distance of ``a`` and ``b``, or ``limit + 1`` as soon as it must exceed ``limit``."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        if min(current) > limit:
            return limit + 1
        previous = current
    return min(previous[-1], limit + 1)
