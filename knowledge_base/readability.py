"""Readability check for Russian answers: formulas plus a канцелярит (officialese) detector.

Formulas use the Russian coefficients fitted by the plainrussian.ru project (I. Begtin,
«Понятный русский язык»; infoculture/plainrussian, ``textmetric/metric.py``) and Oborneva's
adaptation of Flesch reading ease (И. В. Оборнева, 2006). See ``docs/knowledge-base.md``.

The check is advice for operators (a warning, not a block) and a gate for the knowledge base
(``otklik kb check``). The bar lives in ``readability.yaml`` so supervisors can change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from knowledge_base.datafile import DataFileError, load_model, read_yaml_list
from knowledge_base.russian import Token, normalize, sentences, stem, syllables, words

HERE = Path(__file__).resolve().parent
BAR_FILE = HERE / "readability.yaml"
KANTSELYARIT_FILE = HERE / "kantselyarit.yaml"

#: plainrussian.ru: a word is complex when it has more than 4 syllables.
COMPLEX_WORD_SYLLABLES = 4


class ReadabilityConfigError(DataFileError):
    pass


class ReadabilityBar(BaseModel):
    """What a text must meet to be «ok». Edited by supervisors (``readability.yaml``)."""

    #: Highest school grade allowed (see ``ReadabilityReport.grade_level``).
    max_grade: float = 9.0
    #: Highest number of канцелярит findings per 100 words.
    max_kantselyarit_per_100_words: float = 6.0
    #: A sentence with more words than this is reported as too long.
    max_sentence_words: int = 20
    #: How many too-long sentences a text may have and still pass.
    max_long_sentences: int = 0
    #: Densities of short texts are computed as if they had at least this many words,
    #: so one verbal noun in a two-sentence reply does not fail it.
    min_words_for_density: int = 40
    #: Nouns in -ние/-тие/-ция that are plain in our field (lemmas, lower case).
    verbal_noun_whitelist: list[str] = Field(default_factory=list)
    #: Reflexive verbs that are not passive (lemmas with -ся).
    reflexive_whitelist: list[str] = Field(default_factory=list)


class Issue(BaseModel):
    #: stock_phrase, verbal_noun, genitive_chain, passive, long_sentence
    kind: str
    start: int
    end: int
    fragment: str
    message: str
    suggestion: str | None = None


class ReadabilityReport(BaseModel):
    ok: bool
    #: School grade (higher = harder): the mean of the Flesch-Kincaid grade and SMOG, both
    #: with Russian coefficients. One formula alone swings too much on two-sentence replies.
    grade_level: float
    #: The grade in words, e.g. «7-й класс».
    grade_text: str
    flesch_reading_ease: float
    flesch_kincaid_grade: float
    smog: float
    coleman_liau: float
    words: int
    sentences: int
    syllables: int
    complex_words: int
    avg_sentence_words: float
    avg_word_syllables: float
    kantselyarit_per_100_words: float
    issues: list[Issue] = Field(default_factory=list)
    #: Why the text fails the bar, in Russian; empty when ok.
    failures: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class StockPhrase:
    phrase: str
    suggestion: str
    stems: tuple[str, ...]


def load_bar(path: Path = BAR_FILE) -> ReadabilityBar:
    return load_model(path, ReadabilityBar, error=ReadabilityConfigError)


def save_bar(bar: ReadabilityBar, path: Path = BAR_FILE) -> None:
    """Write the bar (for the admin UI). Comments in the file are not kept."""
    text = yaml.safe_dump(bar.model_dump(), allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def load_stock_phrases(path: Path = KANTSELYARIT_FILE) -> list[StockPhrase]:
    items = read_yaml_list(path, "{phrase, suggestion}", error=ReadabilityConfigError)
    phrases: list[StockPhrase] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not item.get("phrase") or not item.get("suggestion"):
            raise ReadabilityConfigError(f"{path}: item {index}: needs phrase and suggestion")
        phrase = str(item["phrase"])
        phrase_stems = tuple(stem(token.lower) for token in words(phrase))
        phrases.append(StockPhrase(phrase, str(item["suggestion"]), phrase_stems))
    # Longest first, so «в случае если» wins over «в случае».
    phrases.sort(key=lambda p: len(p.stems), reverse=True)
    return phrases


@lru_cache(maxsize=1)
def _default_phrases() -> tuple[StockPhrase, ...]:
    return tuple(load_stock_phrases())


# --- formulas ---------------------------------------------------------------------------


def flesch_reading_ease(asl: float, asw: float) -> float:
    """Oborneva's Russian adaptation: 206.835 − 1.3·ASL − 60.1·ASW (higher = easier)."""
    return 206.835 - 1.3 * asl - 60.1 * asw


def flesch_kincaid_grade(asl: float, asw: float) -> float:
    """plainrussian.ru coefficients: 0.318·ASL + 14.2·ASW − 30.5 (school grade)."""
    return 0.318 * asl + 14.2 * asw - 30.5


def smog(complex_words: int, n_sentences: int) -> float:
    """plainrussian.ru coefficients: 1.1·√(64.6·complex / sentences) + 0.05."""
    if n_sentences == 0:
        return 0.0
    return 1.1 * math.sqrt(64.6 * complex_words / n_sentences) + 0.05


def coleman_liau(letters: int, n_words: int, n_sentences: int) -> float:
    """plainrussian.ru coefficients: 0.055·L − 0.35·S − 20.33 (L, S per 100 words)."""
    if n_words == 0:
        return 0.0
    return 0.055 * letters * 100 / n_words - 0.35 * n_sentences * 100 / n_words - 20.33


def grade_text(grade: float) -> str:
    """A grade in words, as an operator would say it."""
    rounded = max(1, round(grade))
    if rounded <= 11:
        return f"{rounded}-й класс"
    if rounded <= 16:
        return f"{rounded - 11}-й курс вуза"
    return "выше уровня вуза"


# --- morphology (pymorphy3, loaded once on first use) -----------------------------------


@dataclass(frozen=True)
class _Morph:
    pos: str | None
    case: str | None
    lemma: str
    voice: str | None


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=100_000)
def _morph(word: str) -> _Morph:
    parse = _analyzer().parse(word)[0]
    tag = parse.tag
    return _Morph(tag.POS, tag.case, normalize(parse.normal_form), tag.voice)


def lemma(word: str) -> str:
    """The dictionary form of a Russian word (``путёвку`` → ``путевка``), cached."""
    return _morph(word.lower()).lemma


_VERBAL_NOUN_ENDINGS = ("ние", "тие", "ция")
_REFLEXIVE_ENDINGS = ("ется", "ются", "ится", "ятся", "ался", "алась", "алось", "ались")


# --- the check --------------------------------------------------------------------------


def check_text(text: str, bar: ReadabilityBar | None = None) -> ReadabilityReport:
    """Measure ``text`` and list what makes it hard to read. Never raises on odd input."""
    bar = bar or load_bar()
    tokens = [t for t in words(text) if syllables(t.text) > 0]
    sents = sentences(text)
    n_words = len(tokens)
    n_sents = max(1, len(sents)) if n_words else 0
    n_syll = sum(syllables(t.text) for t in tokens)
    n_complex = sum(1 for t in tokens if syllables(t.text) > COMPLEX_WORD_SYLLABLES)
    letters = sum(1 for t in tokens for ch in t.text if ch.isalpha())
    asl = n_words / n_sents if n_sents else 0.0
    asw = n_syll / n_words if n_words else 0.0

    fk = flesch_kincaid_grade(asl, asw) if n_words else 0.0
    issues = (
        _stock_phrase_issues(text)
        + _morphology_issues(text, bar)
        + _long_sentence_issues(text, bar)
    )
    issues.sort(key=lambda issue: (issue.start, issue.end))
    kantselyarit = _count_findings([i for i in issues if i.kind != "long_sentence"])
    density = 100 * kantselyarit / max(n_words, bar.min_words_for_density)
    long_sentences = sum(1 for issue in issues if issue.kind == "long_sentence")
    grade = max(0.0, (fk + smog(n_complex, n_sents)) / 2) if n_words else 0.0

    failures: list[str] = []
    if grade > bar.max_grade:
        failures.append(
            f"Текст сложный: {grade:.1f} по школьной шкале ({grade_text(grade)}), "
            f"нужно не выше {bar.max_grade:g}. "
            "Сократите предложения и замените длинные слова."
        )
    if density > bar.max_kantselyarit_per_100_words:
        failures.append(
            f"Много канцелярита: {density:.1f} на 100 слов, допустимо "
            f"{bar.max_kantselyarit_per_100_words:g}."
        )
    if long_sentences > bar.max_long_sentences:
        failures.append(
            f"Длинных предложений: {long_sentences} (больше {bar.max_sentence_words} слов)."
        )
    return ReadabilityReport(
        ok=not failures,
        grade_level=round(grade, 2),
        grade_text=grade_text(grade),
        flesch_reading_ease=round(flesch_reading_ease(asl, asw) if n_words else 100.0, 2),
        flesch_kincaid_grade=round(fk, 2),
        smog=round(smog(n_complex, n_sents), 2),
        coleman_liau=round(coleman_liau(letters, n_words, n_sents), 2),
        words=n_words,
        sentences=n_sents,
        syllables=n_syll,
        complex_words=n_complex,
        avg_sentence_words=round(asl, 2),
        avg_word_syllables=round(asw, 2),
        kantselyarit_per_100_words=round(density, 2),
        issues=issues,
        failures=failures,
    )


def _count_findings(issues: list[Issue]) -> int:
    """Issues counted once per place: «осуществление» is a stock phrase and a verbal noun."""
    count = 0
    covered_until = -1
    for issue in sorted(issues, key=lambda i: (i.start, -i.end)):
        if issue.end <= covered_until:
            continue
        count += 1
        covered_until = issue.end
    return count


def _stock_phrase_issues(text: str) -> list[Issue]:
    """Leftmost-longest matches of the stock phrases, by word stems."""
    tokens = words(text)
    token_stems = [stem(t.lower) for t in tokens]
    by_key = _phrases_by_key()
    issues: list[Issue] = []
    i = 0
    while i < len(tokens):
        own = token_stems[i]
        candidates = by_key.get(own, ()) + by_key.get(own[:_PREFIX], ())
        match = next(
            (
                phrase
                for phrase in sorted(candidates, key=lambda p: -len(p.stems))
                if i + len(phrase.stems) <= len(tokens)
                and all(
                    _stem_matches(token_stems[i + k], phrase_stem)
                    for k, phrase_stem in enumerate(phrase.stems)
                )
            ),
            None,
        )
        if match is None:
            i += 1
            continue
        last = i + len(match.stems) - 1
        start, end = tokens[i].start, tokens[last].end
        issues.append(
            Issue(
                kind="stock_phrase",
                start=start,
                end=end,
                fragment=text[start:end],
                message=f"Канцелярский оборот «{text[start:end]}».",
                suggestion=match.suggestion,
            )
        )
        i = last + 1
    return issues


#: A phrase stem this long also matches longer stems («осуществля» → «осуществляется»).
_PREFIX = 6


@lru_cache(maxsize=1)
def _phrases_by_key() -> dict[str, tuple[StockPhrase, ...]]:
    """Phrases by their first stem, or its first letters when prefix matching applies."""
    grouped: dict[str, list[StockPhrase]] = {}
    for phrase in _default_phrases():
        first = phrase.stems[0]
        grouped.setdefault(first if len(first) < _PREFIX else first[:_PREFIX], []).append(phrase)
    return {key: tuple(phrases) for key, phrases in grouped.items()}


def _stem_matches(token_stem: str, phrase_stem: str) -> bool:
    if token_stem == phrase_stem:
        return True
    return len(phrase_stem) >= _PREFIX and token_stem.startswith(phrase_stem)


def _morphology_issues(text: str, bar: ReadabilityBar) -> list[Issue]:
    issues: list[Issue] = []
    whitelist = set(bar.verbal_noun_whitelist)
    reflexive_ok = set(bar.reflexive_whitelist)
    for sentence in sentences(text):
        chain: list[Token] = []
        chain_nouns = 0
        tokens = words(sentence.text)
        for index, token in enumerate(tokens):
            low = token.lower
            morph = _morph(low)
            absolute = Token(token.text, sentence.start + token.start, sentence.start + token.end)
            if (
                morph.pos == "NOUN"
                and morph.lemma.endswith(_VERBAL_NOUN_ENDINGS)
                and morph.lemma not in whitelist
            ):
                issues.append(
                    _issue(
                        text,
                        "verbal_noun",
                        absolute,
                        absolute,
                        f"Отглагольное существительное «{token.text}».",
                        "Скажите глаголом: не «оплата производится», а «оплатите».",
                    )
                )
            passive = morph.pos == "PRTS" and morph.voice == "pssv"
            if morph.pos == "VERB" and low.endswith(_REFLEXIVE_ENDINGS):
                passive = morph.lemma not in reflexive_ok
            if passive:
                issues.append(
                    _issue(
                        text,
                        "passive",
                        absolute,
                        absolute,
                        f"Страдательный оборот «{token.text}»: неясно, кто делает.",
                        "Назовите, кто делает: «мы рассмотрели», «бригада починит».",
                    )
                )
            # A run of genitives; adjectives in genitive may sit between the nouns.
            separated = index > 0 and _has_punctuation(
                sentence.text[tokens[index - 1].end : token.start]
            )
            if separated:
                chain_nouns = _close_chain(text, chain, chain_nouns, issues)
            if morph.case == "gent" and morph.pos in {"NOUN", "ADJF", "PRTF", "NPRO"}:
                chain.append(absolute)
                chain_nouns += morph.pos == "NOUN"
            else:
                chain_nouns = _close_chain(text, chain, chain_nouns, issues)
        _close_chain(text, chain, chain_nouns, issues)
    return issues


def _has_punctuation(gap: str) -> bool:
    return any(ch in ',;:()«»"—–' for ch in gap)


def _close_chain(text: str, chain: list[Token], nouns: int, issues: list[Issue]) -> int:
    if nouns >= 3:
        issues.append(
            _issue(
                text,
                "genitive_chain",
                chain[0],
                chain[-1],
                f"Цепочка из {nouns} существительных в родительном падеже.",
                "Разбейте на два предложения или скажите глаголом.",
            )
        )
    chain.clear()
    return 0


def _long_sentence_issues(text: str, bar: ReadabilityBar) -> list[Issue]:
    issues: list[Issue] = []
    for sentence in sentences(text):
        count = sum(1 for t in words(sentence.text) if syllables(t.text) > 0)
        if count > bar.max_sentence_words:
            issues.append(
                Issue(
                    kind="long_sentence",
                    start=sentence.start,
                    end=sentence.end,
                    fragment=sentence.text,
                    message=(
                        f"Длинное предложение: {count} слов (лучше до {bar.max_sentence_words})."
                    ),
                    suggestion="Разбейте на два-три коротких предложения.",
                )
            )
    return issues


def _issue(text: str, kind: str, first: Token, last: Token, message: str, hint: str) -> Issue:
    return Issue(
        kind=kind,
        start=first.start,
        end=last.end,
        fragment=text[first.start : last.end],
        message=message,
        suggestion=hint,
    )
