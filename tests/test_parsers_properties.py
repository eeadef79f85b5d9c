"""Property-based tests: any input to a payload parser yields an event or a PayloadError.

A webhook that raises anything else answers 500, and the platform retries the same poison
payload for days; so the contract is strict. Inputs are random bytes, random JSON, and real
payloads from ``tests/payloads`` with random values spliced into them (which reaches deep
into the parsers, unlike pure noise).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.email.mime import decode_bytes, header_text, html_to_text
from bot.email.parse import parse_email
from bot.max.parse import parse_max
from bot.normalize import normalize
from bot.phone.parse import parse_phone
from bot.telegram.parse import parse_update
from bot.vk.parse import parse_vk
from core.events import Channel, InboundEvent, PayloadError
from rules.profile import AgencyProfile
from tests.helpers.payloads import PAYLOADS

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _real(channel: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_bytes()) for p in sorted((PAYLOADS / channel).glob("*.json"))]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of a JSON document (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return copy


@st.composite
def mutated(draw: st.DrawFn, channel: str) -> dict[str, Any]:
    """A real payload of the channel with one to three nodes replaced by random JSON."""
    document = draw(st.sampled_from(_real(channel)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        if not paths:
            break
        document = _replace(document, draw(st.sampled_from(paths)), draw(json_value))
    return document


def _event_or_payload_error(parse: Any, *args: Any) -> None:
    try:
        event = parse(*args)
    except PayloadError as exc:
        assert str(exc), "a PayloadError must say what is wrong"
        return
    assert isinstance(event, InboundEvent)


@pytest.mark.parametrize("channel", list(Channel))
@FUZZ
@given(raw=st.binary(max_size=2000))
def test_any_bytes_normalize_to_an_event_or_a_payload_error(
    channel: Channel, raw: bytes, profile: AgencyProfile
) -> None:
    _event_or_payload_error(normalize, channel, raw, profile)


#: The JSON parsers, called alike.
JSON_PARSERS: dict[str, Any] = {
    "telegram": lambda data, profile: parse_update(data, profile),
    "vk": lambda data, profile: parse_vk(data, profile),
    "phone": lambda data, _profile: parse_phone(data),
    "max": lambda data, profile: parse_max(data, profile),
}


@pytest.mark.parametrize("channel", list(JSON_PARSERS))
@FUZZ
@given(data=json_value)
def test_any_json_is_an_event_or_a_payload_error(
    channel: str, data: Any, profile: AgencyProfile
) -> None:
    _event_or_payload_error(JSON_PARSERS[channel], data, profile)


@pytest.mark.parametrize("channel", list(JSON_PARSERS))
@FUZZ
@given(draw=st.data())
def test_mutated_real_payloads_are_events_or_payload_errors(
    channel: str, draw: st.DataObject, profile: AgencyProfile
) -> None:
    _event_or_payload_error(JSON_PARSERS[channel], draw.draw(mutated(channel)), profile)


def _real_emails() -> list[bytes]:
    return [p.read_bytes() for p in sorted((PAYLOADS / "email").glob("*.eml"))]


@st.composite
def spliced_email(draw: st.DrawFn) -> bytes:
    """A real letter with a random byte run inserted or overwritten somewhere."""
    raw = draw(st.sampled_from(_real_emails()))
    at = draw(st.integers(0, len(raw)))
    noise = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        return raw[:at] + noise + raw[at:]
    return raw[:at] + noise + raw[at + len(noise) :]


header_value = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60
) | st.sampled_from(["=?utf-8?b?0J/RgNC40LLQtdGC?=", "=?koi8-r?q?=F0=D2=C9?=", "=?x-bad?q?a?="])


@st.composite
def built_email(draw: st.DrawFn) -> bytes:
    """A letter assembled from random headers, charsets and transfer encodings."""
    charset = draw(st.sampled_from(["utf-8", "windows-1251", "koi8-r", "x-unknown", ""]))
    encoding = draw(st.sampled_from(["8bit", "base64", "quoted-printable", "7bit", "x-bogus"]))
    ctype = draw(st.sampled_from(["text/plain", "text/html", "multipart/mixed", "message/rfc822"]))
    lines = [
        f"From: {draw(header_value)} <{draw(st.sampled_from(['a@b.ru', 'x', '']))}>",
        f"Subject: {draw(header_value)}",
        f"Date: {draw(header_value | st.just('Mon, 23 Nov 2026 09:00:00 +0300'))}",
        f"Message-ID: {draw(header_value)}",
        f"References: {draw(header_value)}",
        f"Content-Type: {ctype}; charset={charset}; boundary=b",
        f"Content-Transfer-Encoding: {encoding}",
        "",
    ]
    head = "\r\n".join(lines).encode("utf-8", errors="surrogateescape")
    return head + b"\r\n" + draw(st.binary(max_size=400))


@FUZZ
@given(raw=spliced_email() | built_email())
def test_damaged_or_odd_letters_are_events_or_payload_errors(
    raw: bytes, profile: AgencyProfile
) -> None:
    _event_or_payload_error(parse_email, raw, profile)


# -- the MIME decoder -------------------------------------------------------------------------

RUSSIAN_WORDS = (  # noqa: SIM905
    "здравствуйте у нас во дворе третью неделю не вывозят мусор прошу принять меры "
    "когда дадут горячую воду в доме номер пять на улице Ленина с уважением жители "
    "подскажите пожалуйста как записаться к врачу через госуслуги спасибо за ответ"
).split()
#: A sentence as citizens write one: five words or more (four different), the first
#: capitalised. Texts of one-letter or repeated words ("у не к", "Неделю неделю неделю")
#: stay ambiguous between koi8-r and windows-1251 for the frequency score: a known limit.
russian_text = (
    st.lists(st.sampled_from([w for w in RUSSIAN_WORDS if len(w) > 1]), min_size=5, max_size=40)
    .filter(lambda words: len(set(words)) >= 4)
    .map(" ".join)
    .map(lambda text: text[0].upper() + text[1:] + ".")
)


@pytest.mark.parametrize("charset", ["utf-8", "windows-1251", "koi8-r"])
@FUZZ
@given(text=russian_text)
def test_declared_charset_round_trips(charset: str, text: str) -> None:
    assert decode_bytes(text.encode(charset), charset) == text


@pytest.mark.parametrize("charset", ["utf-8", "windows-1251", "koi8-r"])
@FUZZ
@given(text=russian_text)
def test_undeclared_charset_is_guessed(charset: str, text: str) -> None:
    assert decode_bytes(text.encode(charset), None) == text


@pytest.mark.parametrize("charset", ["utf-8", "windows-1251", "koi8-r"])
@pytest.mark.parametrize("label", ["us-ascii", "iso-8859-1", "utf-8", "windows-1251", "koi8-r"])
@FUZZ
@given(text=russian_text)
def test_any_charset_label_reads_russian_right(charset: str, label: str, text: str) -> None:
    """Right or wrong, the label never turns Russian into mojibake."""
    assert decode_bytes(text.encode(charset), label) == text


@FUZZ
@given(raw=st.binary(max_size=500), declared=st.none() | st.text(max_size=20))
@example(raw=b"\xff\xfe", declared="utf-16")
def test_decoding_never_fails(raw: bytes, declared: str | None) -> None:
    assert isinstance(decode_bytes(raw, declared), str)


@FUZZ
@given(markup=st.text(max_size=300))
def test_html_to_text_never_fails(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)


@pytest.mark.parametrize("charset", ["utf-8", "windows-1251", "koi8-r"])
@FUZZ
@given(subject=russian_text)
def test_raw_8bit_subject_header_is_decoded(charset: str, subject: str) -> None:
    from email import policy
    from email.parser import BytesParser

    raw = b"From: a@b.ru\r\nSubject: " + subject.encode(charset) + b"\r\n\r\nbody\r\n"
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert header_text(msg, "Subject") == subject
