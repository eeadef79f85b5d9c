"""The new text of a reply, without the quoted letters below it.

Mail programs append the whole previous letter to a reply; the operator needs what the citizen
wrote now. Only a reply (it has ``In-Reply-To`` or ``References``) is cut, only at a marker
that mail programs write (an attribution line followed by ``>`` lines, an Outlook header
block, an "original message" separator), and never down to nothing. The full letter stays in
the journal.
"""

from __future__ import annotations

import re

# "23.11.2026, 12:15, "Приёмная ДГХ" <priem@dgh.example>:" (Yandex),
# "Понедельник, 23 ноября 2026, 12:15 +03:00 от Приёмная ДГХ <priem@dgh.example>:" (Mail.ru),
# "пн, 23 нояб. 2026 г. в 12:15, Приёмная ДГХ <priem@dgh.example>:" (Gmail),
# "On Mon, 23 Nov 2026 at 12:15, Приёмная ДГХ <priem@dgh.example> wrote:".
_ATTRIBUTION = re.compile(r"(@|написал|пишет|wrote).*:\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(Original Message|Исходное сообщение|Reply message|Ответное сообщение)\s*-{2,}",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|От|Отправитель)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Date|Отправлено|Дата|To|Кому)\s*:", re.IGNORECASE)


def strip_quoted_reply(text: str) -> str:
    lines = text.split("\n")
    cut = _quote_start(lines)
    if cut is None:
        return text
    fresh = "\n".join(lines[:cut]).rstrip()
    return fresh if fresh.strip() else text


def _quote_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return index
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(after) for after in lines[index + 1 : index + 4]
        ):
            return index
        if line.lstrip().startswith(">") and _quoted_to_the_end(lines, index):
            start = index
            previous = _previous_text_line(lines, index)
            if previous is not None and _ATTRIBUTION.search(lines[previous]):
                start = previous
            return start
        if _ATTRIBUTION.search(line) and _next_is_quote(lines, index):
            return index
    return None


def _quoted_to_the_end(lines: list[str], start: int) -> bool:
    """Only a trailing quote is cut: answers written between quotes stay whole."""
    return all(not line.strip() or line.lstrip().startswith(">") for line in lines[start:])


def _previous_text_line(lines: list[str], index: int) -> int | None:
    for back in range(index - 1, -1, -1):
        if lines[back].strip():
            return back
    return None


def _next_is_quote(lines: list[str], index: int) -> bool:
    for after in lines[index + 1 :]:
        if after.strip():
            return after.lstrip().startswith(">")
    return False
