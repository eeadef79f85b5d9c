"""Russian-aware FAQ retrieval: BM25 over word stems fused with character n-grams.

* Russian typed in Latin letters is written in Cyrillic first (``translit``).
* Terms are the Snowball stems of the pymorphy3 lemmas: «прописку», «прописки», «прописка»
  are one term, and so are «топят» and «топить».
* Slang and colloquial words are replaced by what they mean (``lexicon.yaml``): «дубак» →
  «холодно», «водила» → «водитель» (which also keeps «водила» away from «вода»).
* Synonym groups (``synonyms.yaml`` and each entry's ``a = b`` synonyms) add a shared group
  term, so «УК» finds entries written with «управляющая компания».
* Character 3- and 4-grams catch typos and clipped words («прописька», «коммуналка»).

Ranking fuses the three signals by weight. «Not our topic» classes (``not_our_topic.yaml``)
are indexed beside the entries: a message nearer to one of them is handed off. Confidence is
a probability that the entry answers the message: a logistic model over a few features of the
match (``calibration.yaml``, fitted by ``scripts/kb_calibrate.py`` on the training part of
``eval/``). Below the configured threshold the bot does not guess; it hands the message to an
operator.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from knowledge_base.datafile import DataFileError, load_model, read_yaml, read_yaml_list
from knowledge_base.entities import extract_entities
from knowledge_base.entries import ENTRIES_DIR, KBEntry, load_entries
from knowledge_base.russian import lemma, lemma_stem, stem, stop_flags, words
from knowledge_base.translit import to_cyrillic

HERE = Path(__file__).resolve().parent
SEARCH_CONFIG_FILE = HERE / "search.yaml"
SYNONYMS_FILE = HERE / "synonyms.yaml"
LEXICON_FILE = HERE / "lexicon.yaml"
NOT_OUR_TOPIC_FILE = HERE / "not_our_topic.yaml"
CALIBRATION_FILE = HERE / "calibration.yaml"
NOT_OUR_TOPIC_PREFIX = "not-our-topic:"

#: The features of a match the calibrated confidence is computed from (see ``_features``).
FEATURES = (
    "score", "coverage", "similarity", "margin", "topic_margin", "terms", "known", "exact",
    "chatter",
)  # fmt: skip


class SearchConfig(BaseModel):
    #: Below this confidence (a probability once calibrated) the bot hands off to an operator.
    handoff_threshold: float = 0.45
    #: Terms from pymorphy3 lemmas (else Snowball stems of the words as written).
    lemmatize: bool = True
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


class Calibration(BaseModel):
    """Logistic model of «this hit answers the message» over ``FEATURES``.

    No weights (an empty file): the uncalibrated mix of coverage and similarity."""

    intercept: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)

    def confidence(self, features: dict[str, float]) -> float:
        if not self.weights:
            return min(1.0, 0.5 * features["coverage"] + 0.5 * features["similarity"])
        z = self.intercept + sum(w * features.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


class Ranking(BaseModel):
    """Everything a query yields: the hits, the «not our topic» class that beat them, and
    the features of the best hit (what the calibration is fitted on)."""

    hits: list[Hit]
    off_topic: str | None = None
    features: dict[str, float] = Field(default_factory=dict)


class Answer(BaseModel):
    """What the bot should do with a message: answer with ``hit`` or hand off (``reason``)."""

    hit: Hit | None
    handoff: bool
    #: empty, no_match, off_topic (a «not our topic» class won) or low_confidence.
    reason: str | None = None
    hits: list[Hit] = Field(default_factory=list)
    #: The «not our topic» class that won (``not_our_topic.yaml`` id), when reason is off_topic.
    off_topic: str | None = None


def load_search_config(path: Path = SEARCH_CONFIG_FILE) -> SearchConfig:
    return load_model(path, SearchConfig)


def load_synonym_groups(path: Path = SYNONYMS_FILE) -> list[list[str]]:
    """Groups of words or phrases that mean the same thing, from ``synonyms.yaml``."""
    data = read_yaml_list(path, "lists of synonyms")
    if not all(isinstance(group, list) for group in data):
        raise DataFileError(f"{path}: expected a list of lists of synonyms")
    return [[str(item) for item in group] for group in data]


def load_lexicon(path: Path = LEXICON_FILE) -> dict[str, str]:
    """Slang word or phrase → its meaning in the words of the entries (``lexicon.yaml``)."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: expected a mapping of word: meaning")
    return {str(key): str(value) for key, value in data.items()}


def load_not_our_topic(path: Path = NOT_OUR_TOPIC_FILE) -> list[KBEntry]:
    """The «not our topic» classes, as entries with phrasings only (never answered with)."""
    classes: list[KBEntry] = []
    for item in read_yaml_list(path, "classes"):
        if not isinstance(item, dict) or not item.get("id") or not item.get("phrasings"):
            raise DataFileError(f"{path}: each class needs an id and phrasings")
        phrasings = [str(p) for p in item["phrasings"]]
        fields: dict[str, Any] = {
            "id": f"{NOT_OUR_TOPIC_PREFIX}{item['id']}", "topic": "", "life_situation": "",
            "question": phrasings[0], "phrasings": phrasings[1:], "synonyms": [],
            "short_answer": "", "full_answer": "", "department": "",
            "cannot_because": None, "available_when": None,
        }  # fmt: skip
        classes.append(KBEntry.model_construct(**fields))
    return classes


def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    return load_model(path, Calibration) if path.exists() else Calibration()


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
    """Turns text into retrieval terms: lemma stems, slang replaced, plus synonym-group terms."""

    def __init__(
        self,
        groups: Iterable[list[str]],
        lexicon: dict[str, str] | None = None,
        *,
        lemmatize: bool = False,
    ) -> None:
        self._term = lemma_stem if lemmatize else stem
        self._lemmatize = lemmatize
        #: Slang is looked up by lemma («водила» → «водить»), not by stem: «вода» and «водила»
        #: share the stem «вод» and must not share the meaning.
        self._key = lemma if lemmatize else stem
        #: Slang as a tuple of keys (stop words included) → the terms of its meaning.
        self._lexicon: dict[tuple[str, ...], list[str]] = {}
        slang: dict[tuple[str, ...], list[str]] = {}
        for key, meaning in (lexicon or {}).items():
            key_terms = tuple(self._key(t.lower) for t in words(to_cyrillic(key)))
            if key_terms:
                slang[key_terms] = self._stems(meaning)  # meanings are not slang themselves
        self._lexicon = slang
        self._lexicon_sizes = sorted({len(key) for key in self._lexicon}, reverse=True)
        #: First stem of a member → (all its stems, the group term).
        self._members: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        for number, group in enumerate(groups):
            for member in group:
                member_stems = tuple(self._stems(member))
                if member_stems:
                    self._members[member_stems[0]].append((member_stems, f"#syn{number}"))

    def _stems(self, text: str) -> list[str]:
        lows = [t.lower for t in words(to_cyrillic(text))]
        stop = stop_flags(lows, by_lemma=self._lemmatize)
        if not self._lexicon:
            return [self._term(low) for low, is_stop in zip(lows, stop, strict=True) if not is_stop]
        keys = [self._key(low) for low in lows]
        result: list[str] = []
        i = 0
        while i < len(lows):
            for size in self._lexicon_sizes:
                meaning = self._lexicon.get(tuple(keys[i : i + size]))
                if meaning is not None:
                    result.extend(meaning)
                    i += size
                    break
            else:
                if not stop[i]:
                    result.append(self._term(lows[i]))
                i += 1
        return result

    def terms(self, text: str) -> list[str]:
        base = self._stems(text)
        extra: set[str] = set()
        for i, first in enumerate(base):
            for member, term in self._members.get(first, ()):
                if tuple(base[i : i + len(member)]) == member:
                    extra.add(term)
        return base + sorted(extra)


def char_ngrams(text: str, sizes: Iterable[int], *, by_lemma: bool = False) -> Counter[str]:
    """Character n-grams of each meaningful word, padded with spaces («прописка» → « пр»...).

    ``by_lemma``: stop words are recognised in any form (``stop_flags``)."""
    grams: Counter[str] = Counter()
    lows = [token.lower for token in words(to_cyrillic(text))]
    for low, is_stop in zip(lows, stop_flags(lows, by_lemma=by_lemma), strict=True):
        if is_stop:
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
    """The FAQ entries with an index built in memory (a few milliseconds for 100 entries).

    ``lexicon``, ``not_our_topic`` and ``calibration`` default to the shipped data files;
    pass ``{}``, ``[]`` and ``Calibration()`` for a plain index.
    """

    def __init__(
        self,
        entries: list[KBEntry],
        *,
        config: SearchConfig | None = None,
        synonym_groups: list[list[str]] | None = None,
        lexicon: dict[str, str] | None = None,
        not_our_topic: list[KBEntry] | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.entries = entries
        self.config = config or SearchConfig()
        self.by_id = {entry.id: entry for entry in entries}
        self.calibration = _shipped_calibration() if calibration is None else calibration
        classes = _shipped_not_our_topic() if not_our_topic is None else not_our_topic
        #: The entries, then the «not our topic» classes: an index past the entries is a class.
        self._docs = [*entries, *classes]
        groups = list(synonym_groups or [])
        docs_keywords: list[list[str]] = []
        for entry in self._docs:
            entry_groups, keywords = entry_synonym_groups(entry)
            groups.extend(entry_groups)
            docs_keywords.append(keywords + [m for g in entry_groups for m in g])
        self.analyzer = Analyzer(
            groups,
            _shipped_lexicon() if lexicon is None else lexicon,
            lemmatize=self.config.lemmatize,
        )
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
        for entry, keywords in zip(self._docs, docs_keywords, strict=True):
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
        for index, entry in enumerate(self._docs):
            for text in self._texts(entry):
                grams = char_ngrams(text, sizes, by_lemma=self.config.lemmatize)
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
        """Top ``k`` entries for ``text``, best first, each with a score and a confidence."""
        return self.rank(text, k).hits

    def rank(self, text: str, k: int = 5) -> Ranking:
        """The top ``k`` entries for ``text`` and whether a «not our topic» class beat them.

        Addresses, dates, phones and appeal numbers are masked first: they say where and
        when, not what about, and would only dilute the confidence.
        """
        text = mask_entities(text)
        raw_terms = self.analyzer.terms(text)
        terms = [self._correct(term) for term in raw_terms]
        if not terms:
            return Ranking(hits=[])
        bm25 = self._bm25_scores(terms)
        ngram, matched = self._ngram_scores(text)
        candidates = set(bm25) | set(ngram)
        if not candidates:
            return Ranking(hits=[])
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        # A number the index never saw («дом 14») is not a topic word.
        query_terms = {t for t in terms if t in self._idf or not t.isdigit()}
        query_weight = sum(self._idf.get(t, self._max_idf) for t in query_terms)
        cfg = self.config
        n_entries = len(self.entries)
        # Score every candidate with plain floats; only the top k become Hit objects (with a
        # few hundred entries nearly all are candidates, and building models dominated).
        scored: list[tuple[float, str, int, float, float]] = []
        best_class: tuple[float, str] = (0.0, "")
        # Names bound once for the loop over every candidate; each float is computed by the
        # same operations in the same order as written out plainly, so the scores are the same.
        idf = self._idf
        weighted = [(t, idf.get(t, 0.0)) for t in query_terms]  # the set's own order
        doc_terms, entries = self._doc_terms, self.entries
        bm25_of, ngram_of = bm25.get, ngram.get
        w_bm25, w_ngrams, w_coverage = cfg.weight_bm25, cfg.weight_ngrams, cfg.weight_coverage
        for index in candidates:
            if index in bm25:
                doc = doc_terms[index]
                covered = sum(w * min(1.0, doc[t]) for t, w in weighted if t in doc)
                coverage = covered / query_weight if query_weight else 0.0
            else:  # no query term in the entry (it would have a BM25 score): nothing covered
                coverage = 0.0
            similarity = ngram_of(index, 0.0)
            score = (
                w_bm25 * bm25_of(index, 0.0) / top_bm25
                + w_ngrams * similarity
                + w_coverage * coverage
            )
            if index >= n_entries:
                best_class = max(best_class, (score, self._docs[index].id))
                continue
            scored.append((round(score, 4), entries[index].id, index, coverage, similarity))
        if not scored:
            return Ranking(hits=[], off_topic=best_class[1] or None)
        scored.sort(key=lambda item: (-item[0], item[1]))
        known = sum(t in self._idf for t in terms if not t.startswith("#"))
        base_terms = [t for t in terms if not t.startswith("#")]
        # Words the index knows as written, apart from those it knows only once a typo was
        # corrected («прописька» → «прописк», but also «тест» → «вест»): the model weighs the
        # two kinds of word on its own.
        exact = sum(t in self._idf for t in raw_terms if not t.startswith("#"))
        shared = {
            "terms": math.log1p(len(base_terms)),
            "known": known / len(base_terms) if base_terms else 0.0,
            "exact": exact / len(base_terms) if base_terms else 0.0,
        }
        hits: list[Hit] = []
        features: dict[str, float] = {}
        for rank, (score, entry_id, index, coverage, similarity) in enumerate(scored[:k]):
            entry = self.entries[index]
            # The best other entry («margin»): a clear winner is likelier right than a tie.
            runner_up = scored[1][0] if len(scored) > 1 else 0.0
            other = scored[0][0] if rank else runner_up
            hit_features = {
                "score": score,
                "coverage": coverage,
                "similarity": similarity,
                "margin": score - other,
                "topic_margin": score - best_class[0],
                # How much the message looks like chatter, on its own: the margin alone
                # cannot tell a strong entry over a strong class from a weak one over none.
                "chatter": best_class[0],
                **shared,
            }
            if rank == 0:
                features = hit_features
            hits.append(
                Hit(
                    entry_id=entry_id,
                    score=score,
                    confidence=round(self.calibration.confidence(hit_features), 4),
                    bm25=round(bm25.get(index, 0.0), 4),
                    ngram_similarity=round(similarity, 4),
                    coverage=round(coverage, 4),
                    matched=matched.get(index, entry.question),
                    entry=entry,
                )
            )
        off_topic = best_class[1] if best_class[0] > scored[0][0] else None
        return Ranking(hits=hits, off_topic=off_topic, features=features)

    def answer(self, text: str, *, threshold: float | None = None) -> Answer:
        """The entry to answer with, or a hand-off to an operator with the reason.

        ``threshold`` None: the configured ``handoff_threshold``."""
        if not text.strip():
            return Answer(hit=None, handoff=True, reason="empty")
        ranking = self.rank(text, k=5)
        hits = ranking.hits
        if ranking.off_topic is not None:
            off_topic = ranking.off_topic.removeprefix(NOT_OUR_TOPIC_PREFIX)
            return Answer(
                hit=None, handoff=True, reason="off_topic", hits=hits, off_topic=off_topic
            )
        if not hits:
            return Answer(hit=None, handoff=True, reason="no_match", hits=hits)
        best = hits[0]
        limit = self.config.handoff_threshold if threshold is None else threshold
        if best.confidence < limit:
            return Answer(hit=None, handoff=True, reason="low_confidence", hits=hits)
        return Answer(hit=best, handoff=False, hits=hits)

    def _correct(self, term: str) -> str:
        """A misspelt stem («прописьк») → the closest known stem («прописк»), if close enough."""
        if term in self._idf or not 4 <= len(term) <= MAX_TYPO_LENGTH or term.isdigit():
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
            if len(self._corrections) >= MAX_CACHED_CORRECTIONS:
                self._corrections.clear()  # a flood of made-up words must not grow it forever
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
        query = self._weigh(
            char_ngrams(text, self.config.ngram_sizes, by_lemma=self.config.lemmatize)
        )
        # The hottest loop of a bot turn: names bound locally; the sums are added in the same
        # order as ever (gram by gram), so the scores are the same to the last bit.
        dots: dict[int, float] = {}
        dot = dots.get
        postings = self._gram_postings.get
        for gram, weight in query.items():
            for phrase_index, phrase_weight in postings(gram, ()):
                dots[phrase_index] = dot(phrase_index, 0.0) + weight * phrase_weight
        best: dict[int, float] = {}
        matched: dict[int, str] = {}
        best_of = best.get
        phrases = self._phrases
        for phrase_index, similarity in dots.items():
            phrase = phrases[phrase_index]
            entry_index = phrase.entry_index
            if similarity > best_of(entry_index, 0.0):
                best[entry_index] = similarity
                matched[entry_index] = phrase.text
        return best, matched


@lru_cache(maxsize=1)
def _shipped_lexicon() -> dict[str, str]:
    return load_lexicon()


@lru_cache(maxsize=1)
def _shipped_not_our_topic() -> list[KBEntry]:
    return load_not_our_topic()


@lru_cache(maxsize=1)
def _shipped_calibration() -> Calibration:
    return load_calibration()


def mask_entities(text: str) -> str:
    """``text`` with every entity span blanked out (offsets stay the same)."""
    chars = list(text)
    for entity in extract_entities(text):
        chars[entity.start : entity.end] = " " * (entity.end - entity.start)
    return "".join(chars)


#: Longer «words» are not typos of a Russian word: and the deletions of a 1,000-letter word
#: are half a million strings (seconds of CPU and hundreds of MB), of 4,000 letters gigabytes.
MAX_TYPO_LENGTH = 24
#: Corrections remembered per index (a few MB at most).
MAX_CACHED_CORRECTIONS = 50_000


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
