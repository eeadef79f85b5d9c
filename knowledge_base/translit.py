"""Russian typed in Latin letters («net goryachei vody») back to Cyrillic («нет горячеи воды»).

Citizens type so on phones without a Russian layout. The spelling is loose (passport style,
«ya» / «ja», «y» for both «ы» and «й»), so the result need not be exact: the typo correction
and the character n-grams of retrieval take it from there. Only words written wholly in Latin
letters are changed; a Cyrillic message passes unchanged.
"""

from __future__ import annotations

import re

_LATIN_WORD_RE = re.compile(r"[A-Za-z']+")

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
    if not any("a" <= ch.lower() <= "z" for ch in text):
        return text
    return _LATIN_WORD_RE.sub(lambda m: word_to_cyrillic(m.group()), text)
