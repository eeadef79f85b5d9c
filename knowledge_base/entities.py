"""Simple entities in a citizen's message: address, appeal number, phone, date.

Regular expressions, not a model: the formats are narrow and must be exact (an appeal number
like ``2026-000123``), and a regex says plainly what it accepts.
"""

from __future__ import annotations

import re

from knowledge_base.nlu_types import Entity

_MONTHS = "января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря"
_NOT_LETTER_BEFORE = r"(?<![0-9A-Za-zА-Яа-яЁё])"
_NOT_LETTER_AFTER = r"(?![0-9A-Za-zА-Яа-яЁё])"

APPEAL_NUMBER_RE = re.compile(rf"{_NOT_LETTER_BEFORE}\d{{4}}-\d{{6}}{_NOT_LETTER_AFTER}")

PHONE_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?:\+7|8)[\s\-]?\(?\d{{3}}\)?[\s\-]?\d{{3}}[\s\-]?\d{{2}}[\s\-]?\d{{2}}"
    rf"{_NOT_LETTER_AFTER}"
)

DATE_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?:"
    rf"\d{{1,2}}\.\d{{1,2}}\.(?:\d{{4}}|\d{{2}})"
    rf"|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}}(?:\s*г(?:ода|\.)?)?)?"
    rf"){_NOT_LETTER_AFTER}",
    re.IGNORECASE,
)

_STREET_TYPES = (
    r"ул\.?|улиц[аеуы]|пр-т|просп\.?|проспект[ае]?|пер\.?|переул(?:ок|ке)|б-р|бульвар[ае]?"
    r"|ш\.|шоссе|пл\.|площад[ьи]|наб\.|набережн(?:ая|ой)|проезд[е]?|мкр\.?|микрорайон[е]?"
)
ADDRESS_RE = re.compile(
    rf"{_NOT_LETTER_BEFORE}(?i:{_STREET_TYPES})\s*"
    # Street name: one word, then more words only if capitalised («Карла Маркса»).
    r"[0-9А-ЯЁа-яё][0-9А-ЯЁа-яё\-]*(?:\s+[А-ЯЁ][А-ЯЁа-яё\-]*)*"
    # House: «, д. 5», «дом 5а», « 12/2», «, 7к1».
    r"(?:,?\s*(?:д\.|дом)?\s*\d+[А-Яа-я]?(?:/\d+|к\d+)?)?"
    r"(?:,?\s*(?:кв\.?|квартира)\s*\d+)?",
)

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("appeal_number", APPEAL_NUMBER_RE),
    ("phone", PHONE_RE),
    ("date", DATE_RE),
    ("address", ADDRESS_RE),
)


def extract_entities(text: str) -> list[Entity]:
    """Every entity found, in text order; overlapping matches keep the earlier kind's match."""
    found: list[Entity] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            value = match.group().rstrip(" ,")
            end = start + len(value)
            if any(start < other.end and other.start < end for other in found):
                continue
            found.append(Entity(kind=kind, value=value, start=start, end=end))
    return sorted(found, key=lambda entity: entity.start)
