"""Russian typed in Latin letters («net goryachei vody») back to Cyrillic («нет горячеи воды»).

Citizens type so on phones without a Russian layout. The spelling is loose (passport style,
«ya» / «ja», «y» for both «ы» and «й»), so the result need not be exact: the typo correction
and the character n-grams of retrieval take it from there. Only words written wholly in Latin
letters are changed; a Cyrillic message passes unchanged.
"""

from __future__ import annotations

import re

_LATIN_WORD_RE = re.compile(r"[A-Za-z']+")
_ANY_LATIN_RE = re.compile(r"[A-Za-z]")

#: Letter groups, longest first within each starting letter (greedy match).
_GROUPS = {
    "tsya": "тся",  # «zapisatsya»: a verb ending, not «ц»
    "tsja": "тся",
    "shch": "щ",
    "sch": "щ",
    "zh": "ж",
    "kh": "х",
    "ts": "ц",
    "tz": "ц",
    "ch": "ч",
    "sh": "ш",
    "yu": "ю",
    "ju": "ю",
    "ya": "я",
    "ja": "я",
    "yo": "е",
    "jo": "е",
    "ye": "е",
    "je": "е",
    "ck": "к",
    "ph": "ф",
}
_LETTERS = {
    "a": "а", "b": "б", "v": "в", "g": "г", "d": "д", "e": "е", "z": "з", "i": "и", "j": "й",
    "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "r": "р", "s": "с", "t": "т",
    "u": "у", "f": "ф", "h": "х", "c": "ц", "w": "в", "q": "к", "x": "кс", "'": "ь",
}  # fmt: skip
_MAX_GROUP = max(map(len, _GROUPS))
_VOWELS = frozenset("аеиоуыэюяе")


def word_to_cyrillic(word: str) -> str:
    """One Latin word in Cyrillic: «goryachei» → «горячеи», «tretiy» → «третий»."""
    low = word.lower()
    out: list[str] = []
    i = 0
    while i < len(low):
        for size in range(_MAX_GROUP, 1, -1):
            group = _GROUPS.get(low[i : i + size])
            if group is not None:
                out.append(group)
                i += size
                break
        else:
            char = low[i]
            if char == "y":
                # «y» after a vowel is «й» (moy, tretiy); elsewhere «ы» (vyvoz, musory).
                out.append("й" if out and out[-1] in _VOWELS else "ы")
            elif char == "e" and not out:
                out.append("э")  # «eto», «elektrichestvo»
            else:
                out.append(_LETTERS.get(char, char))
            i += 1
    return "".join(out)


def to_cyrillic(text: str) -> str:
    """``text`` with every all-Latin word written in Cyrillic (the rest unchanged)."""
    if _ANY_LATIN_RE.search(text) is None:
        return text
    return _LATIN_WORD_RE.sub(lambda m: word_to_cyrillic(m.group()), text)


#: English words that are not also Russian ones in Latin letters (as «i», «no», «to», «do»).
_ENGLISH = """
    the is are am was were be been my your you he she it we they me him her us them this that
    these those what where when why how who which can could will would should does did have
    has had not please hello hi thanks thank of for with from at and or but if there here get
    help water bus
"""
_ENGLISH_FUNCTION_WORDS = frozenset(_ENGLISH.split())


def looks_like_russian(text: str) -> bool:
    """Whether Latin-letter ``text`` reads as Russian once transliterated: no English
    function words, and most of its words (3+ letters) are Russian words pymorphy3 knows."""
    latin = [w.lower() for w in _LATIN_WORD_RE.findall(text)]
    if not latin or set(latin) & _ENGLISH_FUNCTION_WORDS:
        return False
    from knowledge_base.russian import is_known_word

    long_words = [word_to_cyrillic(w) for w in latin if len(w) >= 3]
    if not long_words:
        return False
    known = sum(is_known_word(w) for w in long_words)
    return known >= 0.6 * len(long_words)
