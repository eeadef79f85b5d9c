"""Outbound email: the outbox's sender for channel ``email`` (smtplib in a thread).

Every letter gets a ``Message-ID`` made from the outbox message's idempotency key, so a letter
sent again after a crash carries the same id and the recipient's mail program shows it once.
Threading headers come from the letter being answered (``reply_target``); the appeal number
goes into the subject, so a reply whose ``References`` were stripped still finds its appeal.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot.email.parse import reply_headers_for
from core.clock import Clock
from inbox.models import Conversation, Message
from inbox.outbox import DeliveryError

#: The subject tag carrying the appeal number, e.g. ``[Обращение № 2026-000123]``.
NUMBER_TAG = "[Обращение № {number}]"
NUMBER_IN_SUBJECT = re.compile(r"Обращени[ея]\s*(?:№|N|#)\s*(\d{4}-\d{6})", re.IGNORECASE)
#: Local parts of mail robots: a letter to them can only bounce back and forth.
_ROBOTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply"})
#: Our Message-IDs: ``<otklik.{idempotency key}@{domain}>``.
_OWN_ID = re.compile(r"^otklik\.([0-9A-Za-z_-]{1,64})@(.+)$")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str
    password: str
    starttls: bool
    #: The From header, e.g. ``Приёмная ДГХ <priem@dgh.example>``.
    sender: str
    timeout: float = 30.0

    @property
    def address(self) -> str:
        return parseaddr(self.sender)[1].lower()

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "localhost"


def message_id_for(key: str, domain: str) -> str:
    return f"otklik.{key}@{domain}"


def key_from_message_id(message_id: str, domain: str) -> str | None:
    """The idempotency key behind one of our own Message-IDs (without angle brackets)."""
    found = _OWN_ID.match(message_id.strip().strip("<>"))
    if found and found.group(2).lower() == domain.lower():
        return found.group(1)
    return None


def subject_with_number(subject: str, number: str | None) -> str:
    if not number or number in subject:
        return subject
    return f"{NUMBER_TAG.format(number=number)} {subject}".strip()


def compose(
    message: Message, config: SmtpConfig, number: str | None, now: datetime
) -> EmailMessage:
    """The letter for an outbox message; raises a permanent DeliveryError if it has no address."""
    target = message.reply_target or {}
    to = str(target.get("to") or "").strip()
    if "@" not in to:
        raise DeliveryError("the conversation has no email address to answer", permanent=True)
    if to.lower() == config.address:
        raise DeliveryError("refusing to write to our own address (a mail loop)", permanent=True)
    if to.lower().partition("@")[0] in _ROBOTS:
        raise DeliveryError(f"refusing to write to a mail robot: {to}", permanent=True)
    if not message.idempotency_key:
        raise DeliveryError("outbox message has no idempotency key", permanent=True)
    headers = reply_headers_for({**target, "to": to})
    letter = EmailMessage(policy=SMTP)
    letter["From"] = config.sender
    letter["To"] = to
    letter["Subject"] = subject_with_number(headers["Subject"], number)
    letter["Date"] = format_datetime(now)
    letter["Message-ID"] = f"<{message_id_for(message.idempotency_key, config.domain)}>"
    for name in ("In-Reply-To", "References"):
        if name in headers:
            letter[name] = headers[name]
    unsubscribe = (message.meta or {}).get("unsubscribe_url")
    if unsubscribe:
        # RFC 2369 and RFC 8058: mail clients show «Unsubscribe», which POSTs to the signed
        # link with no further step (inbox/web/ui/mailing_routes.py).
        letter["List-Unsubscribe"] = f"<{unsubscribe}>"
        letter["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if is_automatic_reply(message):
        letter["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer this letter
        letter["X-Auto-Response-Suppress"] = "All"  # nor send an out-of-office to it
    # base64: safe through any server, 8BITMIME or not; Cyrillic in QP would triple in size.
    letter.set_content(message.text, charset="utf-8", cte="base64")
    return letter


def is_automatic_reply(message: Message) -> bool:
    return bool((message.meta or {}).get("auto_submitted"))


class SmtpSender:
    """``await sender(message)`` sends one outbox message; returns its Message-ID.

    4xx answers, refused connections and disconnects raise a retryable DeliveryError; 5xx
    answers a permanent one (the operator sees the failure and the server's words).
    """

    def __init__(self, config: SmtpConfig, factory: sessionmaker[Session], clock: Clock) -> None:
        self.config = config
        self.factory = factory
        self.clock = clock

    async def __call__(self, message: Message) -> str:
        letter = compose(message, self.config, self._number(message), self.clock.now())
        # An automatic reply goes with an empty envelope sender: bounces of it go nowhere.
        envelope_from = "" if is_automatic_reply(message) else self.config.address
        await asyncio.to_thread(self._send, letter, envelope_from)
        return str(letter["Message-ID"]).strip("<>")

    def _number(self, message: Message) -> str | None:
        with self.factory() as session:
            conversation = session.get(Conversation, message.conversation_id)
            return conversation.number if conversation else None

    def _send(self, letter: EmailMessage, envelope_from: str) -> None:
        config = self.config
        try:
            # Port 465 speaks TLS from the first byte (RFC 8314); others may upgrade by STARTTLS.
            smtp_class = smtplib.SMTP_SSL if config.port == 465 else smtplib.SMTP
            with smtp_class(config.host, config.port, timeout=config.timeout) as smtp:
                if config.starttls and config.port != 465:
                    smtp.starttls(context=ssl.create_default_context())
                if config.user:
                    smtp.login(config.user, config.password)
                smtp.send_message(letter, from_addr=envelope_from, to_addrs=[str(letter["To"])])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{a}: {c} {m!r}" for a, (c, m) in exc.recipients.items())
            raise DeliveryError(
                f"SMTP refused the recipient: {detail}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are the agency's configuration, not this letter: keep retrying.
            raise DeliveryError(f"SMTP login failed: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {config.host}:{config.port}: {exc}") from exc
