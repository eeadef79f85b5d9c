"""Storable text: code points no database or encoder accepts are replaced at the edge.

A Python string can hold code points that cannot be written anywhere: a lone surrogate
(U+D800..U+DFFF: a JSON ``"\\ud83d"`` escape without its pair, a header decoded with
``surrogateescape``) has no UTF-8 encoding, so SQLite, psycopg and any UTF-8 response refuse
it; NUL (U+0000) is refused by PostgreSQL's ``text`` and breaks its ``json ->>`` on the whole
row. Such a message used to be acknowledged and then fail on every processing attempt. Each
is replaced with U+FFFD (the replacement character) where client text enters: the normalized
event's validators (``core.events``) and the adapters' own input models (web chat, phone).
A surrogate pair written as two code points becomes the one character it encodes.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, model_validator

REPLACEMENT = "\ufffd"
_INVALID = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates and NUL replaced by U+FFFD (the same object if clean)."""
    if _INVALID.search(text) is None:
        return text
    if _SURROGATE.search(text) is not None:
        # UTF-16 pairs up the surrogates that form a character and replaces the rest.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", REPLACEMENT)


def clean_json(value: Any) -> Any:
    """Strings in ``value`` cleaned, through dicts (keys too), lists and tuples; models and
    other values are left as they are (a model cleans its own fields)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def is_clean_json(value: Any) -> bool:
    """Whether no string in ``value`` (dicts with their keys, lists) needs ``clean_json``."""
    if isinstance(value, str):
        return _INVALID.search(value) is None
    if isinstance(value, dict):
        return all(is_clean_json(k) and is_clean_json(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_clean_json(v) for v in value)
    return True


class StorableModel(BaseModel):
    """A model whose input is cleaned (``clean_json``) before it is validated: its fields,
    nested dicts and lists, and the input itself, so that even a validation error quoting
    the input can be encoded."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return clean_json(data)
