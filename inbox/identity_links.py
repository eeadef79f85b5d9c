"""One citizen across chat channels: a one-time code asked for in one channel and sent in
another links the two citizen records into one (``inbox.history.merge_citizens``).

The code is 8 characters from an alphabet without look-alikes (32^8, about 1.1·10^12), valid
for ``LIFETIME``, used once; only its SHA-256 is stored, so a leaked table row links nothing.
Asking again replaces the citizen's unused code. A citizen who sends wrong, expired or used
codes ``FAILURES_PER_HOUR`` times within an hour is refused further tries for the rest of it
(refusals are audit events, counted over the citizen's conversations), so guessing is hopeless.

The record that asked for the code is kept; the record that sent it is merged into it: its
identities, conversations and applications move over (an application's news still go to the
conversation, hence the channel, it came from). Consents and subscriptions stay with the
conversation they were given in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from core.clock import as_utc
from inbox import audit
from inbox.history import merge_citizens, root_citizen
from inbox.models import AuditEvent, Conversation, IdentityLinkCode

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 8
LIFETIME = timedelta(minutes=10)
FAILURES_PER_HOUR = 5
REFUSED = "identity_link_refused"
LINKED = "identity_linked"
#: A typed code: «ABCD-EFGH», «abcd - efgh» (the hyphen keeps an 8-letter Latin word, e.g.
#: Russian typed in Latin letters, from being taken for a code).
CODE = re.compile(r"^\W*([A-Za-z0-9]{4})\s*-\s*([A-Za-z0-9]{4})\W*$")


class Refusal(StrEnum):
    wrong = "wrong"  # no such code (mistyped or guessed), or expired, or used
    self = "self"  # the citizen's own code: already one record
    too_many = "too_many"  # too many refusals within an hour


@dataclass
class Outcome:
    refused: Refusal | None
    kept_id: int | None = None


def _hash(code: str) -> str:
    return hashlib.sha256(code.upper().replace("-", "").encode("ascii")).hexdigest()


def parse(text: str) -> str | None:
    """The code in a typed message, normalised (``ABCDEFGH``), or None."""
    match = CODE.match(text)
    if match is None:
        return None
    code = (match.group(1) + match.group(2)).upper()
    # Letters and digits outside the alphabet are refused here, not counted as a wrong try.
    return code if all(c in ALPHABET for c in code) else None


def issue(session: Session, citizen_id: int, channel: str, now: datetime) -> str:
    """A new code for the citizen (``ABCD-EFGH``); their earlier unused codes stop working."""
    session.execute(
        sa.update(IdentityLinkCode)
        .where(col(IdentityLinkCode.citizen_id) == citizen_id)
        .where(col(IdentityLinkCode.used_at).is_(None))
        .values(used_at=now)
    )
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    session.add(
        IdentityLinkCode(
            citizen_id=citizen_id, code_hash=_hash(code), channel=channel[:20],
            created_at=now, expires_at=now + LIFETIME,
        )
    )  # fmt: skip
    audit.record(session, "identity_link_code_issued", now, actor="citizen", citizen=citizen_id)
    session.flush()
    return f"{code[:4]}-{code[4:]}"


def _recent_refusals(session: Session, citizen_id: int, now: datetime) -> int:
    own = select(Conversation.id).where(Conversation.citizen_id == citizen_id)
    return session.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.kind == REFUSED)
        .where(col(AuditEvent.conversation_id).in_(own))
        .where(col(AuditEvent.at) > now - timedelta(hours=1))
    ).one()


def redeem(session: Session, conversation: Conversation, code: str, now: datetime) -> Outcome:
    """Link the conversation's citizen to the one who asked for ``code``, if it is valid."""
    citizen_id = root_citizen(session, conversation.citizen_id)
    if _recent_refusals(session, conversation.citizen_id, now) >= FAILURES_PER_HOUR:
        return _refuse(session, conversation, Refusal.too_many, now, count=False)
    found = session.exec(
        select(IdentityLinkCode).where(IdentityLinkCode.code_hash == _hash(code)).with_for_update()
    ).first()
    if found is None or found.used_at is not None or as_utc(found.expires_at) <= now:
        return _refuse(session, conversation, Refusal.wrong, now)
    keep_id = root_citizen(session, found.citizen_id)
    if keep_id == citizen_id:
        return _refuse(session, conversation, Refusal.self, now)
    found.used_at = now
    found.linked_citizen_id = citizen_id
    merge_citizens(session, keep_id, citizen_id, now, actor="citizen")
    audit.record(
        session, LINKED, now, conversation_id=conversation.id, actor="citizen",
        keep=keep_id, merged=citizen_id, code_channel=found.channel,
        channel=conversation.channel,
    )  # fmt: skip
    session.flush()
    return Outcome(None, keep_id)


def _refuse(
    session: Session, conversation: Conversation, why: Refusal, now: datetime, count: bool = True
) -> Outcome:
    kind = REFUSED if count else "identity_link_blocked"
    audit.record(
        session, kind, now, conversation_id=conversation.id, actor="citizen", reason=why.value
    )
    return Outcome(why)
