"""Decoding real Russian mail: wrong or missing charset labels, HTML-only bodies, bad headers."""

from __future__ import annotations

import codecs
import email.errors
import email.header
import html
import re
from email.message import EmailMessage, Message
from html.parser import HTMLParser

#: Tried in this order when the declared charset is missing, unknown or wrong.
FALLBACK_CHARSETS = ("utf-8", "windows-1251", "koi8-r")
# Russian letter frequencies (per cent). A wrong single-byte decoding yields rare letters and
# swaps the case (koi8-r vs windows-1251), so its text scores low.
_FREQ = dict(
    zip(
        "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
        (10.97, 8.45, 8.01, 7.35, 6.70, 6.26, 5.47, 4.73, 4.54, 4.40, 3.49, 3.21, 2.98, 2.81,
         2.62, 2.01, 1.90, 1.74, 1.70, 1.65, 1.59, 1.44, 1.21, 0.97, 0.94, 0.73, 0.64, 0.48,
         0.36, 0.32, 0.26, 0.04, 0.04),
        strict=True,
    )
)  # fmt: skip
_ASCII_WEIGHT = 3.0  # the same in every candidate decoding: neutral
_UPPER_INSIDE_WORD = 2.0  # capitals after a letter are rare in real text
_LOWER_TO_UPPER = 10.0  # "пРОШУ": the mark of a koi8-r / windows-1251 swap


def decode_bytes(payload: bytes, declared: str | None) -> str:
    """Bytes → text: the declared charset if it fits, else the most Russian-looking guess."""
    candidates: list[str] = []
    if declared:
        try:
            candidates.append(codecs.lookup(declared).name)
        except (LookupError, ValueError):  # unknown name; ValueError: a NUL in the label
            pass
    for name in FALLBACK_CHARSETS:
        if codecs.lookup(name).name not in candidates:
            candidates.append(codecs.lookup(name).name)
    if not payload.isascii():
        try:
            return payload.decode("utf-8")  # Cyrillic in a single-byte charset never is UTF-8
        except UnicodeDecodeError:
            pass
    strict: list[tuple[str, str]] = []
    for name in candidates:
        try:
            strict.append((name, payload.decode(name)))
        except UnicodeDecodeError:
            continue
    if not strict:
        return payload.decode("utf-8", errors="replace")
    declared_name = candidates[0] if declared and strict[0][0] == candidates[0] else None
    _, best_text = max(strict, key=lambda item: _russianness(item[1]))
    if declared_name and _russianness(strict[0][1]) >= _russianness(best_text) * 0.9:
        return strict[0][1]  # trust a declared charset that reads as well as the best guess
    return best_text


def _russianness(text: str) -> float:
    """How much ``text`` reads like Russian: mean letter frequency, minus odd capitals."""
    if not text:
        return 0.0
    score = 0.0
    previous = ""
    for ch in text:
        if ch.isascii():
            score += _ASCII_WEIGHT
        elif ch.lower() in _FREQ:
            score += _FREQ[ch.lower()]
            if ch.isupper() and previous.isalpha():
                score -= _UPPER_INSIDE_WORD
                if previous.islower():
                    score -= _LOWER_TO_UPPER
        previous = ch
    return score / len(text)


def part_text(part: Message) -> str:
    """The text of one leaf MIME part, transfer-decoded and charset-decoded."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    text = decode_bytes(payload, part.get_content_charset())
    return text.replace("\r\n", "\n").replace("\r", "\n")


def body_text(msg: EmailMessage) -> tuple[str, bool]:
    """The readable body and whether it came from HTML; plain text is preferred."""
    plain = _first_part(msg, "text/plain")
    if plain is not None:
        return part_text(plain).strip(), False
    rich = _first_part(msg, "text/html")
    if rich is not None:
        return html_to_text(part_text(rich)), True
    return "", False


def _first_part(msg: EmailMessage, content_type: str) -> Message | None:
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() != content_type:
            continue
        if part.get_content_disposition() == "attachment":
            continue
        return part
    return None


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset(
        {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.chunks))
    text = re.sub(r"[ \t\r\f\v\u00a0]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()


def header_text(msg: Message, name: str) -> str:
    """A header's decoded text.

    RFC 2047 encoded words are decoded by hand, so that a wrong charset label (koi8-r bytes
    labelled windows-1251, a common mailer bug) is caught like in bodies; raw 8-bit headers
    (no RFC 2047 at all) are decoded by guessing.
    """
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    if isinstance(raw, str) and "=?" in raw:
        decoded = header_text_value(raw)
        if decoded is not None:
            return decoded
    # Raw 8-bit bytes survive only in the raw value (surrogate-escaped); the parsed header
    # has already turned them into U+FFFD.
    if isinstance(raw, str) and any("\udc80" <= ch <= "\udcff" for ch in raw):
        unfolded = re.sub(r"\r?\n[ \t]+", " ", raw).strip()
        return decode_bytes(unfolded.encode("utf-8", errors="surrogateescape"), None)
    try:
        return str(msg.get(name))
    except Exception:  # the stdlib's address parser crashes on some malformed headers
        return re.sub(r"\r?\n[ \t]+", " ", str(raw)).strip()


def header_text_value(raw: str) -> str | None:
    """Decode a header with RFC 2047 encoded words; None if it cannot be parsed."""
    unfolded = re.sub(r"\r?\n[ \t]+", " ", raw).strip()
    try:
        chunks = email.header.decode_header(unfolded)
    except (ValueError, email.errors.HeaderParseError):
        return None
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset and charset != "unknown-8bit":
            parts.append(decode_bytes(chunk, charset))
        else:
            parts.append(decode_bytes(chunk, None))
    return "".join(parts)
