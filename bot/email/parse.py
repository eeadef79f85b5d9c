"""An RFC 5322 message → normalized event.

Automatic mail must never be answered (RFC 3834): it would start a mail loop. Such mail is
marked ``is_automatic`` and the rules give it no response.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from bot.email.mime import body_text, decode_bytes, header_text, header_text_value
from bot.email.quotes import strip_quoted_reply
from core.events import Attachment, Author, Channel, Facts, InboundEvent, PayloadError, Place
from rules.profile import AgencyProfile

_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")


def parse_email(
    raw: bytes, profile: AgencyProfile, received_at: datetime | None = None
) -> InboundEvent:
    if not raw or not raw.strip():
        raise PayloadError("empty email message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default always gives one
        raise PayloadError("cannot parse the email message")
    from_header = header_text(msg, "From")
    name, address = parseaddr(from_header)
    if not address or "@" not in address:
        raise PayloadError("email has no valid From address: not an RFC 5322 message?")
    address = address.lower()
    message_id = _msgid(header_text(msg, "Message-ID"))
    external_id = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    references = [_msgid(r) for r in header_text(msg, "References").split() if _msgid(r)]
    in_reply_to = _msgid(header_text(msg, "In-Reply-To"))
    root = references[0] if references else (in_reply_to or external_id)
    subject = header_text(msg, "Subject").strip()
    text, from_html = body_text(msg)
    if in_reply_to or references:
        text = strip_quoted_reply(text)
    try:
        addressed = msg.get_all("To", []) + msg.get_all("Cc", [])
    except Exception:  # the stdlib's address parser crashes on some malformed headers
        addressed = [header_text(msg, "To"), header_text(msg, "Cc")]
    recipients = [a.lower() for _, a in getaddresses(addressed)]
    return InboundEvent(
        channel=Channel.email,
        external_id=external_id,
        thread_key=f"email:{root}",
        author=Author(external_id=address, display_name=name or None),
        text=text or subject,
        attachments=_attachments(msg),
        published_at=_date(header_text(msg, "Date"), received_at),
        facts=Facts(
            place=Place.email,
            is_own=profile.is_agency_email(address),
            is_automatic=is_automatic(msg, address),
            extra={
                "subject": subject,
                "from_html": from_html,
                "to_agency": any(profile.is_agency_email(r) for r in recipients),
                # As received, for joining a letter to its appeal when References were cut.
                "in_reply_to": in_reply_to,
                "references": references,
            },
        ),
        reply_target={
            "to": address,
            "subject": subject,
            "in_reply_to": message_id,
            "references": [*references, message_id] if message_id else references,
        },
        raw=raw_payload(raw),
    )


def raw_payload(raw: bytes) -> dict[str, str]:
    """The letter as received, for the journal: text if it is UTF-8 or ASCII, else base64.

    8-bit windows-1251 bodies are not valid UTF-8; stored as surrogate escapes they would be
    rejected by PostgreSQL's JSON type, so such letters are kept byte-exact in base64, as are
    letters with a NUL byte (the event's validators would replace it).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # a NUL would be replaced (core.codepoints): keep bytes
        return {"rfc822_base64": base64.b64encode(raw).decode("ascii")}
    return {"rfc822": text}


def raw_bytes(raw: dict[str, Any]) -> bytes:
    """The letter's bytes back from :func:`raw_payload`'s form."""
    if "rfc822_base64" in raw:
        return base64.b64decode(raw["rfc822_base64"])
    return str(raw.get("rfc822", "")).encode("utf-8", errors="surrogateescape")


def is_automatic(msg: EmailMessage, sender: str) -> bool:
    """Auto-replies, bounces, mailing lists (RFC 3834, RFC 2369, RFC 3464)."""
    auto_submitted = header_text(msg, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if header_text(msg, "Precedence").strip().lower() in {"bulk", "list", "junk", "auto_reply"}:
        return True
    if msg.get("List-Id") or msg.get("List-Unsubscribe") or msg.get("X-Autoreply"):
        return True
    if msg.get("X-Autorespond") or msg.get("X-Auto-Response-Suppress", "").lower() == "all":
        return True
    if msg.get_content_type() == "multipart/report":
        return True
    if header_text(msg, "Return-Path").strip() == "<>":
        return True
    return sender.split("@")[0] in _BOUNCE_SENDERS


def _msgid(value: str) -> str:
    return value.strip().strip("<>").strip()


def _date(value: str, received_at: datetime | None) -> datetime:
    if value:
        try:
            parsed = parsedate_to_datetime(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            pass
    return received_at or datetime.now(UTC)


def attachment_parts(msg: EmailMessage) -> list[tuple[Message, bytes]]:
    """Every attached file with its decoded bytes, nested multiparts included.

    A part counts as a file when it is marked ``attachment``, carries a file name, or is not
    text at all (an inline picture); the text parts are the body.
    """
    found: list[tuple[Message, bytes]] = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() == "message/rfc822":
            continue
        named = part.get_content_disposition() == "attachment" or bool(part.get_filename())
        if not named and part.get_content_maintype() in ("text", "message"):
            continue
        payload = part.get_payload(decode=True)
        found.append((part, payload if isinstance(payload, bytes) else b""))
    return found


def _attachments(msg: EmailMessage) -> list[Attachment]:
    return [
        Attachment(
            kind="photo" if part.get_content_maintype() == "image" else "document",
            name=_filename(part),
            mime_type=part.get_content_type(),
            size=len(payload),
            ref="sha256:" + hashlib.sha256(payload).hexdigest(),
        )
        for part, payload in attachment_parts(msg)
    ]


def _filename(part: Message) -> str | None:
    """RFC 2231 (``filename*=``) and RFC 2047 (Outlook's quoted ``=?…?=``) names, decoded."""
    name = part.get_filename()
    if not name:
        return None
    if "=?" in name:
        decoded = header_text_value(name)
        if decoded:
            return decoded
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        return decode_bytes(name.encode("utf-8", errors="surrogateescape"), None)
    return name


def reply_headers(event: InboundEvent) -> dict[str, Any]:
    """Threading headers for a reply to ``event`` (RFC 5322 section 3.6.4)."""
    return reply_headers_for(event.reply_target)


def reply_headers_for(target: dict[str, Any]) -> dict[str, Any]:
    """Threading headers for a reply to the letter ``target`` describes (its reply_target)."""
    refs = " ".join(f"<{r}>" for r in target.get("references", []))
    headers: dict[str, Any] = {"To": target["to"]}
    if target.get("in_reply_to"):
        headers["In-Reply-To"] = f"<{target['in_reply_to']}>"
    if refs:
        headers["References"] = refs
    subject = target.get("subject") or ""
    headers["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    return headers
