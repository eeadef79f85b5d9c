"""A place as a key: two ways of writing one address give the same key.

«ул. Ленина, д. 5», «Ленина 5», «улица Ленина, дом 5» and «г. Энск, Ленина, 5» all give
``ленина 5``; «пр-т Мира 12а», «проспект Мира, 12 А» give ``мира 12а``. Dropped: the case,
«ё», punctuation, the kind of street (улица, проспект, переулок…), the words that name a
house (дом, д.), the town (город, г. and the word after it), a flat or an entrance
(кв. 12). Kept: the names and the house numbers, in their order, a letter glued to its
number. So a house, a street («Ленина» alone: ``ленина``) and a yard («двор дома 5 по
Ленина») stay different keys: matching is exact on the key, never fuzzy, so that a citizen
is offered to join a complaint only about the very place they named.
"""

from __future__ import annotations

import re
import unicodedata

#: Kinds of street and words that introduce a house number: dropped.
_DROPPED_WORDS = (
    "ул улица пр просп проспект пр-т пр-кт пер переулок пл площадь ш шоссе б-р бул "
    "бульвар наб набережная проезд пр-д туп тупик мкр микрорайон кв-л квартал д дом "
    "корп корпус к стр строение р-н район у возле около напротив рядом дома"
)
_DROPPED = frozenset(_DROPPED_WORDS.split())
#: Words dropped with the word after them: the town («г. Энск»), a flat or an entrance
#: («кв. 12», «подъезд 2»: someone's flat is not the place of a shared problem).
_WITH_NEXT = frozenset(
    {"г", "город", "пгт", "пос", "поселок", "село", "дер", "деревня", "кв", "квартира",
     "под", "подъезд", "эт", "этаж"}
)  # fmt: skip
_WORD = re.compile(r"[0-9]+|[a-zа-я]+(?:-[a-zа-я]+)?")
#: A key is at most this long (the column's length); longer text is cut.
MAX_KEY = 300
#: Text beyond this is not read at all.
MAX_TEXT = 1000


def place_key(text: str) -> str:
    """The comparable key of a place as typed (empty when nothing is left)."""
    folded = unicodedata.normalize("NFKC", text[:MAX_TEXT]).casefold().replace("ё", "е")
    words = _WORD.findall(folded)
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in _WITH_NEXT:
            skip_next = True
            continue
        if word in _DROPPED:
            continue
        if len(word) == 1 and word.isalpha() and kept and kept[-1].isdigit():
            kept[-1] += word  # «12 А» → «12а»
            continue
        kept.append(word)
    return " ".join(kept)[:MAX_KEY].strip()
