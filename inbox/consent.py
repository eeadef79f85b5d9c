"""The registry of consents to proactive service, and the guard that enforces them.

The standard («Учет согласий на проактивное оказание услуг»): the agency writes to a
citizen first only with the citizen's consent, given for all the services of a life
situation or for one service (``rules/proactive.yaml``), and withdrawn at any time. A
consent keeps the exact wording the citizen was shown; giving and withdrawing it are audit
events (``consent_given``, ``consent_withdrawn``) with who did it and through which door (the
bot, an operator on the citizen's request, the command line, an email's one-click link).

``withhold`` is the guard: the outbox calls it on every message it claims, and a proactive
message (``meta["purpose"]`` in ``PROACTIVE``) whose citizen has no live consent covering its
service, or whose subscription was cancelled, is not sent (``withheld``). So a consent
withdrawn after a mailing was queued still stops the next message. News of the citizen's own
application (``inbox.applications.PURPOSE``) is no proactive service and is never withheld.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inbox import audit
from inbox.models import Consent, DeliveryStatus, Message, Subscription
from rules.proactive import ProactiveRules

SCOPE_KINDS = ("situation", "service")
#: Purposes of messages the agency sends first (``Message.meta["purpose"]``).
PROACTIVE = ("mailing", "digest")
#: Doors a consent is given or withdrawn through.
VIA = ("bot", "operator", "cli", "email", "api")


class ConsentError(ValueError):
    """A request that cannot be done; the message is for the person who made it (Russian)."""


def check_scope(rules: ProactiveRules, kind: str, scope_id: str) -> None:
    if kind not in SCOPE_KINDS:
        raise ConsentError("Согласие дают на жизненную ситуацию или на услугу.")
    if rules.scope_title(kind, scope_id) is None:
        what = "жизненной ситуации" if kind == "situation" else "услуги"
        raise ConsentError(f"Нет такой {what}: «{scope_id[:40]}».")


def live(session: Session, citizen_id: int) -> list[Consent]:
    return list(
        session.exec(
            select(Consent)
            .where(Consent.citizen_id == citizen_id)
            .where(col(Consent.withdrawn_at).is_(None))
            .order_by(col(Consent.id))
        )
    )


def registry(session: Session, citizen_id: int) -> list[Consent]:
    """Every consent of the citizen, live and withdrawn, newest first."""
    return list(
        session.exec(
            select(Consent).where(Consent.citizen_id == citizen_id).order_by(col(Consent.id).desc())
        )
    )


def covers(consents: Iterable[Consent], service: str, situation: str | None) -> bool:
    """A live consent to the service, or to the life situation it belongs to."""
    return any(
        c.withdrawn_at is None
        and (
            (c.scope_kind == "service" and c.scope_id == service)
            or (c.scope_kind == "situation" and c.scope_id == situation)
        )
        for c in consents
    )


def give(
    session: Session,
    rules: ProactiveRules,
    citizen_id: int,
    kind: str,
    scope_id: str,
    now: datetime,
    *,
    via: str,
    by: str,
    conversation_id: int | None = None,
) -> Consent:
    """Record a consent with the wording of ``rules`` (what the citizen was shown).

    A live consent to the same scope is returned as it is: pressing «Согласен» twice, or two
    operators at once, make one consent (the partial unique index settles a race)."""
    check_scope(rules, kind, scope_id)
    existing = _live_one(session, citizen_id, kind, scope_id)
    if existing is not None:
        return existing
    consent = Consent(
        citizen_id=citizen_id, scope_kind=kind, scope_id=scope_id,
        wording=rules.consent_text(kind, scope_id), given_at=now, given_via=via,
        given_by=by[:100], conversation_id=conversation_id,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(consent)
    except sa.exc.IntegrityError:
        found = _live_one(session, citizen_id, kind, scope_id)
        assert found is not None
        return found
    audit.record(
        session, "consent_given", now, conversation_id=conversation_id, actor=f"{via}:{by}"[:100],
        citizen_id=citizen_id, consent_id=consent.id, scope=f"{kind}:{scope_id}",
        wording=consent.wording,
    )  # fmt: skip
    return consent


def _live_one(session: Session, citizen_id: int, kind: str, scope_id: str) -> Consent | None:
    return session.exec(
        select(Consent)
        .where(Consent.citizen_id == citizen_id)
        .where(Consent.scope_kind == kind)
        .where(Consent.scope_id == scope_id)
        .where(col(Consent.withdrawn_at).is_(None))
    ).first()


def withdraw(
    session: Session,
    rules: ProactiveRules,
    consents: Iterable[Consent],
    now: datetime,
    *,
    via: str,
    by: str,
    conversation_id: int | None = None,
) -> list[Subscription]:
    """Withdraw these consents; the subscriptions no consent covers any more are cancelled
    (returned)."""
    withdrawn = [c for c in consents if c.withdrawn_at is None]
    citizens = {c.citizen_id for c in withdrawn}
    for consent in withdrawn:
        consent.withdrawn_at = now
        consent.withdrawn_via = via
        consent.withdrawn_by = by[:100]
        audit.record(
            session, "consent_withdrawn", now, conversation_id=conversation_id,
            actor=f"{via}:{by}"[:100], citizen_id=consent.citizen_id, consent_id=consent.id,
            scope=f"{consent.scope_kind}:{consent.scope_id}",
        )  # fmt: skip
    session.flush()
    cancelled: list[Subscription] = []
    for citizen_id in citizens:
        left = live(session, citizen_id)
        for subscription in live_subscriptions(session, citizen_id):
            topic = rules.topic(subscription.topic)
            service = topic.service if topic else subscription.topic
            situation = rules.situation_of(service)
            if not covers(left, service, situation.id if situation else None):
                cancel_subscription(session, subscription, now, via=via, by=by)
                cancelled.append(subscription)
    return cancelled


def withdraw_all(
    session: Session,
    rules: ProactiveRules,
    citizen_id: int,
    now: datetime,
    *,
    via: str,
    by: str,
    conversation_id: int | None = None,
) -> tuple[list[Consent], list[Subscription]]:
    """«Стоп»: every live consent of the citizen and every subscription."""
    consents = live(session, citizen_id)
    cancelled = withdraw(
        session, rules, consents, now, via=via, by=by, conversation_id=conversation_id
    )
    for subscription in live_subscriptions(session, citizen_id):
        cancel_subscription(session, subscription, now, via=via, by=by)
        cancelled.append(subscription)
    return consents, cancelled


def live_subscriptions(session: Session, citizen_id: int) -> list[Subscription]:
    return list(
        session.exec(
            select(Subscription)
            .where(Subscription.citizen_id == citizen_id)
            .where(col(Subscription.cancelled_at).is_(None))
            .order_by(col(Subscription.id))
        )
    )


def cancel_subscription(
    session: Session, subscription: Subscription, now: datetime, *, via: str, by: str
) -> None:
    if subscription.cancelled_at is not None:
        return
    subscription.cancelled_at = now
    audit.record(
        session, "unsubscribed", now, conversation_id=subscription.conversation_id,
        actor=f"{via}:{by}"[:100], citizen_id=subscription.citizen_id,
        subscription_id=subscription.id, topic=subscription.topic,
    )  # fmt: skip


def withhold(session: Session, messages: list[Message], now: datetime) -> list[Message]:
    """The guard: of the claimed ``messages``, the ones that may go. A proactive message
    whose citizen has no live consent covering it now, or whose subscription is cancelled,
    is marked ``withheld`` and left out (and the audit says why)."""
    proactive = [m for m in messages if (m.meta or {}).get("purpose") in PROACTIVE]
    if not proactive:
        return messages
    citizens = {int(m.meta["citizen_id"]) for m in proactive}
    consents = session.exec(
        select(Consent)
        .where(col(Consent.citizen_id).in_(citizens))
        .where(col(Consent.withdrawn_at).is_(None))
    ).all()
    by_citizen: dict[int, list[Consent]] = {}
    for consent in consents:
        by_citizen.setdefault(consent.citizen_id, []).append(consent)
    subscription_ids = {int(m.meta["subscription_id"]) for m in proactive}
    open_subscriptions = set(
        session.exec(
            select(Subscription.id)
            .where(col(Subscription.id).in_(subscription_ids))
            .where(col(Subscription.cancelled_at).is_(None))
        ).all()
    )
    stopped: set[int] = set()
    for message in proactive:
        meta = message.meta
        allowed = int(meta["subscription_id"]) in open_subscriptions and covers(
            by_citizen.get(int(meta["citizen_id"]), []), meta["service"], meta.get("situation")
        )
        if not allowed:
            message.delivery_status = DeliveryStatus.withheld.value
            message.last_error = "Не отправлено: житель отозвал согласие или отписался."
            stopped.add(id(message))
            audit.record(
                session, "withheld", now, conversation_id=message.conversation_id,
                message_id=message.id, citizen_id=meta["citizen_id"],
                subscription_id=meta["subscription_id"],
            )  # fmt: skip
    return [m for m in messages if id(m) not in stopped]
