"""Just enough Russian morphology to find an agency's name in any grammatical case."""

from __future__ import annotations

import re

_VOWELS_AND_SOFT = "аеёиоуыэюяйь"
# Longest first: adjective and noun case endings of the words in agency names.
_ENDINGS = sorted(
    [
        "ого",
        "его",
        "ому",
        "ему",
        "ими",
        "ыми",
        "ой",
        "ей",
        "ый",
        "ий",
        "ая",
        "яя",
        "ое",
        "ее",
        "ую",
        "юю",
        "ом",
        "ем",
        "ам",
        "ям",
        "ах",
        "ях",
        "ами",
        "ями",
        "ов",
        "ев",
        "ии",
        "ия",
        "ию",
        "ие",
        "а",
        "я",
        "у",
        "ю",
        "е",
        "ы",
        "и",
        "о",
        "ь",
        "й",
    ],
    key=len,
    reverse=True,
)


def stem(word: str) -> str:
    """Strip one case ending, keeping at least four letters of the stem."""
    lower = word.lower()
    for ending in _ENDINGS:
        if lower.endswith(ending) and len(lower) - len(ending) >= 4:
            return lower[: -len(ending)]
    return lower


def name_pattern(name: str) -> str:
    """A regex matching ``name`` in any case form: «Департаменту городского хозяйства».

    Abbreviations (all capitals, like «ДГХ») match as whole words only: «ДГХ» but not «ДГХО».
    """
    words = name.split()
    if len(words) == 1 and name.isupper():
        return r"(?<!\w)" + re.escape(name) + r"(?!\w)"
    parts = []
    for word in words:
        if len(word) <= 3:
            parts.append(re.escape(word))
        else:
            parts.append(re.escape(stem(word)) + r"[" + _VOWELS_AND_SOFT + r"гмвх]{0,3}")
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"
