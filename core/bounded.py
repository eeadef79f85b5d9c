"""Numbers from clients, bounded before they reach Python arithmetic or the database.

Python's ``int`` has no upper limit, but a database column does (BIGINT: 2**63 - 1), and so do
``float`` and ``datetime``: a 30-digit id in a URL or a 400-digit timestamp in a header would
otherwise end as an overflow deep in a driver, a 500 with a traceback. Route parameters that
are ids use ``DbId`` (a 422 with a JSON detail when out of range); headers and other text go
through ``parse_bounded_int``.
"""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import Ge, Le

#: The largest value of a BIGINT column, on PostgreSQL and SQLite alike.
INT64_MAX = 2**63 - 1

#: A database id in a path, query or form parameter of a route.
DbId = Annotated[int, Ge(0), Le(INT64_MAX)]

_DIGITS = re.compile(r"[+-]?[0-9]{1,19}")


def parse_bounded_int(text: str | None, *, low: int = 0, high: int = INT64_MAX) -> int | None:
    """``text`` as a whole number within ``[low, high]``; None for anything else (at most 19
    digits are ever converted, so no input costs more than that)."""
    if text is None:
        return None
    text = text.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None
