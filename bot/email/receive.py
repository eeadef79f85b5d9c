"""Inbound email: the mailbox → the inbox, without losing or doubling a letter.

For every unseen letter: fetch it (``BODY.PEEK``: the server keeps it unseen), save its
attachments, join it to its appeal, journal it with ``Inbox.accept`` (committed), and only then
flag it ``\\Seen``. A crash or a dropped connection before the flag means the letter is fetched
again next time; the journal recognises it (Message-ID, else a hash of the bytes) and stores
nothing twice. After the flag, the letter is processed; after the poll, new appeals are
acknowledged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.email.acknowledge import acknowledge_new_appeals
from bot.email.mailbox import ImapMailbox, MailboxError
from bot.email.parse import attachment_parts, parse_email
from bot.email.send import NUMBER_IN_SUBJECT, key_from_message_id
from bot.intake import accept_and_process
from core.events import Channel, InboundEvent, PayloadError
from inbox.ingest import Accepted, find_open_conversation
from inbox.models import OPEN_STATUSES, Conversation, Message
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    fetched: int = 0
    stored: list[int] = field(default_factory=list)  # journal record ids
    duplicates: int = 0
    acknowledged: list[int] = field(default_factory=list)  # outbox message ids
    rejected: list[int] = field(default_factory=list)  # UIDs of letters we cannot read
    own: int = 0  # copies of letters we sent ourselves (already in their conversations)
    error: str | None = None


@dataclass(frozen=True)
class EmailInbound:
    """What receiving needs besides the runtime: where files go, which addresses are ours."""

    data_dir: Path
    own_addresses: frozenset[str]
    #: Domain of our Message-IDs (replies naming them join their appeal).
    domain: str


def poll_once(runtime: Runtime, mailbox: ImapMailbox, inbound: EmailInbound) -> PollReport:
    """Read every unseen letter once. IMAP errors end the poll; what was stored stays stored."""
    report = PollReport()
    try:
        with mailbox:
            for uid in mailbox.unseen():
                raw = mailbox.fetch(uid)
                if raw is None:
                    continue
                report.fetched += 1
                try:
                    event = receive_letter(runtime, raw, inbound)
                except PayloadError as exc:
                    # Not a letter we can read: leave it flagged for a person, do not loop on it.
                    log.warning("email uid %s cannot be read: %s", uid, exc)
                    mailbox.add_flags(uid, "\\Seen", "\\Flagged")
                    report.rejected.append(uid)
                    continue
                if key_from_message_id(event.external_id, inbound.domain):
                    # A copy of our own letter (a Bcc to the mailbox, a server that files
                    # sent mail in INBOX): it is already in its conversation, and taking it
                    # for the agency's answer would stop the clock on an acknowledgement.
                    mailbox.mark_seen(uid)
                    report.own += 1
                    continue
                accepted = accept_and_process(
                    runtime,
                    event,
                    label="email letter",
                    after_accept=_flag_seen(mailbox, uid),
                )
                if accepted.duplicate:
                    report.duplicates += 1
                else:
                    report.stored.append(accepted.record_id)
    except MailboxError as exc:
        log.warning("email poll stopped: %s", exc)
        report.error = str(exc)
    report.acknowledged = acknowledge(runtime, inbound)
    return report


def receive_letter(runtime: Runtime, raw: bytes, inbound: EmailInbound) -> InboundEvent:
    """The letter as a normalized event, its files saved, joined to its appeal if it has one."""
    event = parse_email(raw, runtime.profile, runtime.clock.now())
    save_attachments(raw, inbound.data_dir)
    if len(raw) > RAW_INLINE_LIMIT:
        # Big letters (attachments) are kept byte-exact on disk, not in the journal's JSON.
        digest = hashlib.sha256(raw).hexdigest()
        store_file(inbound.data_dir / "mail" / f"{digest}.eml", raw)
        event = event.model_copy(
            update={"raw": {"rfc822_file": f"mail/{digest}.eml", "size": len(raw)}}
        )
    with runtime.factory() as session:
        return link_thread(session, event, inbound.domain)


#: Letters larger than this (bytes) are kept under ``data_dir/mail/`` instead of the journal.
RAW_INLINE_LIMIT = 256 * 1024


def save_attachments(raw: bytes, data_dir: Path) -> list[Path]:
    """Attachment bytes under ``data_dir/attachments/<sha256>`` (the Attachment's ref)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    saved = []
    for _part, payload in attachment_parts(msg):
        path = data_dir / "attachments" / hashlib.sha256(payload).hexdigest()
        store_file(path, payload)
        saved.append(path)
    return saved


def store_file(path: Path, data: bytes) -> None:
    """Write once, atomically: a file under its hash name is always complete."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    partial.write_bytes(data)
    partial.replace(path)


def link_thread(session: Session, event: InboundEvent, domain: str) -> InboundEvent:
    """Join a letter to its appeal when its own headers do not.

    Mail programs often drop ``References``. Then a reply still names one of our letters in
    ``In-Reply-To``, or carries the appeal number in its subject (``[Обращение № …]``); the
    number counts only when the letter comes from the appeal's own address.
    """
    if find_open_conversation(session, event.channel.value, event.thread_key):
        return event
    conversation = _by_our_message_id(session, event, domain) or _by_number(session, event)
    if conversation is None:
        return event
    # Our answers then reference the appeal's first letter again: the thread stays whole.
    root = conversation.thread_key.removeprefix("email:")
    references = [root, *(r for r in event.reply_target.get("references", []) if r != root)]
    return event.model_copy(
        update={
            "thread_key": conversation.thread_key,
            "reply_target": {**event.reply_target, "references": references},
        }
    )


def _by_our_message_id(session: Session, event: InboundEvent, domain: str) -> Conversation | None:
    extra = event.facts.extra
    named = [extra.get("in_reply_to") or "", *reversed(extra.get("references") or [])]
    for message_id in named:
        key = key_from_message_id(message_id, domain)
        if key is None:
            continue
        ours = session.exec(select(Message).where(Message.idempotency_key == key)).first()
        if ours is not None:
            return session.get(Conversation, ours.conversation_id)
    return None


def _by_number(session: Session, event: InboundEvent) -> Conversation | None:
    found = NUMBER_IN_SUBJECT.search(str(event.facts.extra.get("subject", "")))
    if not found:
        return None
    conversation = session.exec(
        select(Conversation)
        .where(Conversation.number == found.group(1))
        .where(Conversation.channel == Channel.email.value)
    ).first()
    if conversation is None or conversation.status not in {s.value for s in OPEN_STATUSES}:
        return None
    address = str(conversation.reply_target.get("to", "")).lower()
    return conversation if address == event.author.external_id.lower() else None


def _flag_seen(mailbox: ImapMailbox, uid: int) -> Callable[[Accepted], None]:
    """Flag the letter ``\\Seen``: only once it is in the journal (then a crash before the
    flag fetches it again, and the journal spots the duplicate)."""

    def flag(_accepted: Accepted) -> None:
        mailbox.mark_seen(uid)

    return flag


def acknowledge(runtime: Runtime, inbound: EmailInbound) -> list[int]:
    """Queue acknowledgements of the appeals opened in the last day that have none yet."""
    now = runtime.clock.now()
    with runtime.factory() as session:
        try:
            queued = acknowledge_new_appeals(
                session,
                now,
                since=now - ACKNOWLEDGE_WITHIN,
                own_addresses=inbound.own_addresses,
                tz=runtime.rules.calendar.timezone,
                agency=runtime.profile.names[0],
            )
            session.commit()
        except IntegrityError:  # another process queued it at the same moment
            session.rollback()
            return []
        return [m.id for m in queued if m.id is not None]


#: Appeals older than this get no acknowledgement any more (e.g. after a long outage).
ACKNOWLEDGE_WITHIN = timedelta(days=1)
