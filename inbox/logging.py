"""Personal data never reaches the logs: a filter that masks it in every log record.

Citizens write their phone numbers, e-mail addresses, passport, SNILS and INN numbers and home
addresses into appeals; exceptions and access logs then carry them to log files that many
people read and that are kept for years. ``PersonalDataFilter`` rewrites each record's message
and its traceback text (a database error quotes the statement's parameters: the citizen's
text) before any handler formats it; ``install`` puts it on the handlers of the root logger
and uvicorn's loggers (a filter on a logger would miss records propagated from its children,
a filter on a handler sees them all) and on ``logging.lastResort``. ``configure`` is how each
long-running ``otklik`` process sets up its logging; the ``otklik`` command installs the
filter before any sub-command runs, and the web app again once uvicorn made its handlers.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# Personal data reaches the logs inside exception messages too, often as Python or JSON
# literals: ``'тел.\\n+7 916 …'``, ``"\\u0418\\u041d\\u041d 500100732259"``. An escape
# sequence right before a number is a boundary, as a space would be (else ``\\n`` would hide
# the phone after it, and ``\\u0434`` would glue its hex digits to the number).
_ESCAPE = r"(?<=\\[ntrfvab0])|(?<=\\x[0-9a-fA-F]{2})|(?<=\\u[0-9a-fA-F]{4})|(?<=\\U[0-9a-fA-F]{8})"
_NO_DIGIT = rf"(?:(?<!\d)|{_ESCAPE})"  # no digit right before (an escape may be)
_NO_WORD = rf"(?:(?<![\w+])|{_ESCAPE})"  # no letter, digit or + right before
_NO_LETTER = rf"(?:(?<!\w)|{_ESCAPE})"  # no letter or digit right before

#: (what, pattern); the order matters: longer, more specific numbers first.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)),
    # SNILS: 123-456-789 01, 123-456-789-01 or 11 digits in a row.
    ("snils", re.compile(rf"{_NO_DIGIT}(?:\d{{3}}-\d{{3}}-\d{{3}}[ -]\d{{2}}|\d{{11}})(?!\d)")),
    # INN: 12 digits (a person's), 10 digits (an organisation's or a sole trader's).
    ("inn", re.compile(rf"{_NO_DIGIT}(?:\d{{12}}|\d{{10}})(?!\d)")),
    # Russian phones: +7 / 8 and ten digits with any spaces, dashes, brackets between.
    (
        "phone",
        re.compile(
            rf"{_NO_WORD}(?:\+7|8)[\s\-()]*\d{{3}}[\s\-()]*\d{{3}}[\s\-]*\d{{2}}[\s\-]*\d{{2}}(?!\d)"
        ),
    ),
    # Any other international number: + and 10-15 digits.
    ("phone", re.compile(rf"{_NO_WORD}\+\d[\d\s\-()]{{9,18}}\d(?!\d)")),
    # Passport of the Russian Federation: series (2+2 digits) and number (6 digits).
    ("passport", re.compile(rf"{_NO_DIGIT}\d{{2}}\s?\d{{2}}\s?(?:№\s?)?\d{{6}}(?!\d)")),
    # Addresses: the name after a street word, the number after a house / flat word.
    (
        "address",
        re.compile(
            rf"(?i){_NO_LETTER}(?:ул|улица|пр-т|проспект|пер|переулок|ш|шоссе|б-р|бульвар|наб|"
            r"набережная|пл|площадь|мкр|микрорайон)\.?\s+[\w\-]+(?:\s+[\w\-]+)?"
        ),
    ),
    (
        "address",
        re.compile(
            rf"(?i){_NO_LETTER}(?:д|дом|кв|квартира|корп|корпус|стр|строение)\.?\s*№?\s*\d+[\w/\-]*"
        ),
    ),
)


def mask(text: str) -> str:
    """``text`` with personal data replaced by ``***`` (the kind of datum stays readable)."""
    for kind, pattern in _PATTERNS:
        text = pattern.sub(_mask_address if kind == "address" else MASK, text)
    return text


def _mask_address(match: re.Match[str]) -> str:
    word = re.match(r"[^\s\d№]+\.?", match.group(0))
    return f"{word.group(0) if word else ''} {MASK}"


class PersonalDataFilter(logging.Filter):
    """Masks personal data in a record's message and traceback; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the template and each string argument, keeping ``args`` for formatters that
        read them (uvicorn's access log unpacks them); if personal data still shows in the
        formatted message (built from numbers, say), store the masked message instead. The
        traceback is formatted here, once, and kept masked in ``exc_text``, which every
        ``logging.Formatter`` prints instead of formatting ``exc_info`` again."""
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask(v) if isinstance(v, str) else v for k, v in record.args.items()}
        try:
            message: str | None = record.getMessage()
        except Exception:  # a broken format string: logging reports it (masked, as above)
            message = None
        if message is not None and mask(message) != message:
            record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


#: Loggers whose handlers get the filter besides the root's (uvicorn does not propagate).
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
#: The format of every ``otklik`` process's log lines.
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def install(loggers: tuple[str, ...] = LOGGERS) -> PersonalDataFilter:
    """Put one filter on every handler of ``loggers`` and on ``logging.lastResort`` (what
    prints warnings and errors when no handler is configured, as in most ``otklik``
    commands); safe to call more than once. A handler added later needs another call."""
    handlers = [h for name in loggers for h in logging.getLogger(name).handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    the_filter = next(
        (f for h in handlers for f in h.filters if isinstance(f, PersonalDataFilter)),
        PersonalDataFilter(),
    )
    for handler in handlers:
        if the_filter not in handler.filters:
            handler.addFilter(the_filter)
    return the_filter


def configure(level: int = logging.INFO) -> None:
    """Log to standard error at ``level`` (once per process), personal data masked: what
    ``otklik serve``, ``otklik worker`` and ``otklik telegram poll`` start with."""
    logging.basicConfig(level=level, format=FORMAT)
    install()
