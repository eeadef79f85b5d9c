"""Small Russian text helpers shared by retrieval and the readability check.

Words, sentences and syllables are counted the way the plainrussian.ru formulas expect:
a syllable is a vowel letter, a word is a run of letters (with inner hyphens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

VOWELS = frozenset("аеёиоуыэюяaeiouy")

#: A word: letters (Cyrillic or Latin) and digits, with inner hyphens («кто-то», «2-й»).
WORD_RE = re.compile(r"[0-9A-Za-zА-Яа-яЁё]+(?:-[0-9A-Za-zА-Яа-яЁё]+)*")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Abbreviations that end with a dot but do not end a sentence.
_ABBREVIATIONS = _word_set(
    "ул д кв г пр просп пер ш стр корп т е др им см руб коп тел мин ч рис н э"
)

_SENTENCE_END_RE = re.compile(r"[.!?…]+")

#: Words that carry no meaning for retrieval (short list on purpose: «не» and «нет» matter).
STOPWORDS = _word_set(
    """
    а и в во на по к ко с со у о об от до за из для же ли бы то это этот эта эти тот та те
    как так что чтобы где когда или но да вот уже еще ещё ну мне меня мой моя мои мы нас нам
    я ты вы вас вам ваш ваша он она оно они его ее её их им ним нее неё него был была было были
    есть быть будет при про под над без между через который которая которые которое весь все
    всё всех сам сама само тут там здесь очень просто подскажите скажите пожалуйста здравствуйте
    добрый день вечер утро привет спасибо можно нужно надо хочу хотим хотела хотел
    """
)


#: Stop words that are stop words in any form, found by their dictionary form: «всем» and
#: «всеми» are «весь», «вашей» is «ваш», «хотите» is «хотеть». Greeting words are left out:
#: «день» is a stop word as written («добрый день») but «дней» carries the topic («10 дней без
#: воды»); the greetings themselves are recognised as a pair (``GREETING_NOUNS``).
STOP_LEMMAS = (STOPWORDS - _word_set("день вечер утро добрый можно нужно надо")) | _word_set(
    "хотеть подсказать здравствовать приветствовать"
)
#: «Добрый» before one of these, in any form, is a greeting: «доброго утра», «доброй ночи».
GREETING_NOUNS = _word_set("день вечер утро ночь время")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return normalize(self.text)


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def normalize(text: str) -> str:
    """Lower case and «ё» → «е», so that both spellings match."""
    return text.lower().replace("ё", "е")


def words(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def syllables(word: str) -> int:
    """Syllables of a word, counted by vowel letters (аеёиоуыэюя)."""
    return sum(1 for ch in word.lower() if ch in VOWELS)


def sentences(text: str) -> list[Sentence]:
    """Split text into sentences at . ! ? … and line breaks, skipping address abbreviations."""
    result: list[Sentence] = []
    line_start = 0
    for line in text.split("\n"):
        _split_line(result, text, line_start, line_start + len(line))
        line_start += len(line) + 1
    return result


def _split_line(into: list[Sentence], text: str, begin: int, end: int) -> None:
    start = begin
    for match in _SENTENCE_END_RE.finditer(text, begin, end):
        if match.group() == ".":
            before = WORD_RE.findall(text[start : match.start()])
            if before and normalize(before[-1]) in _ABBREVIATIONS:
                continue
            # «12.03.2026», «3.5»: a dot inside a number does not end a sentence.
            if match.end() < end and not text[match.end()].isspace():
                continue
        _append_sentence(into, text, start, match.end())
        start = match.end()
    _append_sentence(into, text, start, end)


def _append_sentence(into: list[Sentence], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if stripped and WORD_RE.search(stripped):
        begin = start + chunk.index(stripped)
        into.append(Sentence(stripped, begin, begin + len(stripped)))


_stemmer = snowballstemmer.stemmer("russian")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """Snowball stem of one lower-case word (Latin words and numbers pass unchanged)."""
    return str(_stemmer.stemWord(normalize(word)))


def stems(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Stems of the meaningful words of ``text``, in order."""
    result: list[str] = []
    for token in words(text):
        low = token.lower
        if not keep_stopwords and low in STOPWORDS:
            continue
        result.append(stem(low))
    return result


def stop_flags(lows: list[str], *, by_lemma: bool = False) -> list[bool]:
    """For each lower-case word of a message, whether it is a stop word.

    ``by_lemma``: also in any form (``STOP_LEMMAS``) and greetings as a pair («доброго утра»,
    «доброй ночи»); otherwise only ``STOPWORDS`` as written.
    """
    flags = [low in STOPWORDS for low in lows]
    if not by_lemma:
        return flags
    lemmas = [lemma(low) for low in lows]
    for i, word_lemma in enumerate(lemmas):
        flags[i] = flags[i] or word_lemma in STOP_LEMMAS
        if word_lemma == "добрый" and i + 1 < len(lemmas) and lemmas[i + 1] in GREETING_NOUNS:
            flags[i] = flags[i + 1] = True
    return flags


@lru_cache(maxsize=1)
def _morph_analyzer() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


_CYRILLIC_WORD_RE = re.compile(r"[а-яё-]+")


@lru_cache(maxsize=100_000)
def lemma(word: str) -> str:
    """Dictionary form of one lower-case Russian word (pymorphy3, the likeliest parse):
    «топят» → «топить», «цапнула» → «цапнуть». Other words pass unchanged."""
    if not _CYRILLIC_WORD_RE.fullmatch(word):
        return word
    return normalize(_morph_analyzer().parse(word)[0].normal_form)


@lru_cache(maxsize=100_000)
def lemma_stem(word: str) -> str:
    """The stem of the lemma: «топят» and «топить» meet, and so do «отключили» and
    «отключение» (Snowball after the lemma joins words of one root and part of speech)."""
    return stem(lemma(word))


def is_known_word(word: str) -> bool:
    """Whether pymorphy3's dictionary has ``word`` (or, for «-тся» typed without «ь», the
    «-ться» form: «записатся»)."""
    analyzer = _morph_analyzer()
    if analyzer.word_is_known(word):
        return True
    return word.endswith("тся") and bool(analyzer.word_is_known(word[:-3] + "ться"))
