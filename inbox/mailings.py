"""Subscriptions to mailing topics, and mailings delivered through the outbox.

A citizen subscribes to a topic of ``rules/proactive.yaml`` (from the bot, or an operator on
the citizen's request), with a district where the topic has them, and says how often: at
once (``now``), a daily or a weekly digest. Subscribing gives the consent the topic needs
(``inbox.consent.give``) with the wording shown.

A supervisor's mailing is sent by ``send_due`` (the worker's scheduler): for every live
subscription of its topic (and district) whose citizen's consent covers it, a
``MailingRecipient`` row and, for ``now`` subscribers, the outbox message are written in one
transaction, batch by batch. The row is unique per mailing and citizen and the message's
idempotency key is derived from it, so a crash (kill -9) mid-mailing and a second run make
no second message: the run goes on with those not yet written. Daily and weekly subscribers'
rows wait for ``send_digests``, which makes one message per subscription of everything
pending. The outbox sends within each platform's rate limits (the senders') and withholds
any message whose consent was withdrawn in the meantime (``inbox.consent.withhold``).

Every message ends with how to unsubscribe and carries the «Отписаться» button; an email
gets ``List-Unsubscribe`` with a signed one-click link (RFC 8058), ``unsubscribe_token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, func, select

from core.clock import as_utc
from inbox import audit, consent, workflow
from inbox.applications import clean_text
from inbox.models import (
    Consent,
    Conversation,
    Mailing,
    MailingRecipient,
    Message,
    Subscription,
)
from inbox.runtime import Runtime
from rules.proactive import ProactiveRules, Topic, proactive_rules

FREQUENCIES = {"now": "сразу", "daily": "раз в день", "weekly": "раз в неделю"}
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
STATUSES = {
    "draft": "черновик",
    "scheduled": "запланирована",
    "sending": "отправляется",
    "sent": "отправлена",
    "cancelled": "отменена",
}
#: Longest mailing text (a chat message, and Telegram's limit is 4096 with the footer).
MAX_TEXT = 3000
#: The button under every mailing message: ``unsub:<subscription id>``.
UNSUBSCRIBE_PREFIX = "unsub:"
UNSUBSCRIBE_LABEL = "Отписаться"
FOOTER = (
    "Вы подписаны на рассылку «{topic}». "
    "Чтобы отписаться, напишите «стоп» или нажмите «Отписаться»."
)
EMAIL_FOOTER = "Вы подписаны на рассылку «{topic}». Чтобы отписаться, перейдите по ссылке: {url}"
DIGEST_HEAD = {"daily": "Новости за день", "weekly": "Новости за неделю"}
_SALT = "otklik-unsubscribe"


class MailingError(ValueError):
    """A request that cannot be done; the message is for the person who made it (Russian)."""


# -- subscriptions ---------------------------------------------------------------------------


def subscribe(
    session: Session,
    rules: ProactiveRules,
    conversation: Conversation,
    topic_id: str,
    area: str | None,
    frequency: str,
    now: datetime,
    *,
    via: str,
    by: str,
) -> Subscription:
    """Subscribe the conversation's citizen (mailings go to this conversation's channel),
    giving the consent to the topic's service unless one already covers it."""
    topic = rules.topic(topic_id)
    if topic is None:
        raise MailingError(f"Нет такой темы рассылки: «{topic_id[:40]}».")
    if frequency not in FREQUENCIES:
        raise MailingError("Выберите, как часто присылать: сразу, раз в день или раз в неделю.")
    if area is not None and (not topic.areas or rules.area(area) is None):
        raise MailingError(f"Нет такого района: «{area[:40]}».")
    citizen_id = conversation.citizen_id
    assert conversation.id is not None
    situation = rules.situation_of(topic.service)
    if not consent.covers(
        consent.live(session, citizen_id), topic.service, situation.id if situation else None
    ):
        consent.give(
            session, rules, citizen_id, "service", topic.service, now, via=via, by=by,
            conversation_id=conversation.id,
        )  # fmt: skip
    subscription = session.exec(
        select(Subscription)
        .where(Subscription.citizen_id == citizen_id)
        .where(Subscription.topic == topic.id)
        .where(col(Subscription.cancelled_at).is_(None))
        .with_for_update()
    ).first()
    if subscription is None:
        subscription = Subscription(
            citizen_id=citizen_id, topic=topic.id, area=area, frequency=frequency,
            conversation_id=conversation.id, created_at=now,
        )  # fmt: skip
        session.add(subscription)
    else:
        subscription.area = area
        subscription.frequency = frequency
        subscription.conversation_id = conversation.id
    session.flush()
    audit.record(
        session, "subscribed", now, conversation_id=conversation.id, actor=f"{via}:{by}"[:100],
        citizen_id=citizen_id, subscription_id=subscription.id, topic=topic.id, area=area,
        frequency=frequency,
    )  # fmt: skip
    return subscription


def unsubscribe(
    session: Session,
    rules: ProactiveRules,
    subscription: Subscription,
    now: datetime,
    *,
    via: str,
    by: str,
) -> None:
    """Cancel the subscription and withdraw a consent given to its service alone (a consent
    to the whole life situation stays: the citizen gave it for more than this topic)."""
    consent.cancel_subscription(session, subscription, now, via=via, by=by)
    topic = rules.topic(subscription.topic)
    service = topic.service if topic else subscription.topic
    own = [
        c
        for c in consent.live(session, subscription.citizen_id)
        if c.scope_kind == "service" and c.scope_id == service
    ]
    consent.withdraw(
        session, rules, own, now, via=via, by=by, conversation_id=subscription.conversation_id
    )
    session.flush()


def unsubscribe_token(secret_key: str, subscription_id: int) -> str:
    """The signed token of a one-click unsubscribe link (it names one subscription only)."""
    if not secret_key:
        raise ValueError("an unsubscribe link needs the secret key")
    return str(URLSafeSerializer(secret_key, salt=_SALT).dumps(subscription_id))


def read_unsubscribe_token(secret_key: str, token: str) -> int | None:
    """The subscription id of a token we signed, or None (forged, altered, too long)."""
    if not secret_key or len(token) > 200:
        return None
    try:
        value = URLSafeSerializer(secret_key, salt=_SALT).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- mailings -------------------------------------------------------------------------------


@dataclass
class MailingDraft:
    topic: str
    area: str | None
    text: str
    #: When to send (None: at once).
    scheduled_at: datetime | None


def check_draft(rules: ProactiveRules, draft: MailingDraft, now: datetime) -> str:
    """The cleaned text; MailingError naming what to fix."""
    topic = rules.topic(draft.topic)
    if topic is None:
        raise MailingError("Выберите тему рассылки.")
    if draft.area is not None and (not topic.areas or rules.area(draft.area) is None):
        raise MailingError("У этой темы нет такого района.")
    try:
        text = clean_text(draft.text, "text", MAX_TEXT)
    except ValueError as exc:
        raise MailingError(str(exc)) from None
    if not text:
        raise MailingError("Напишите текст рассылки.")
    if draft.scheduled_at is not None and draft.scheduled_at < now - timedelta(minutes=5):
        raise MailingError("Время отправки уже прошло: укажите время не раньше текущего.")
    if draft.scheduled_at is not None and draft.scheduled_at > now + timedelta(days=366):
        raise MailingError("Время отправки дальше года: проверьте дату.")
    return text


def create(
    session: Session,
    rules: ProactiveRules,
    draft: MailingDraft,
    now: datetime,
    *,
    by: str,
    operator_id: int | None = None,
    keep_draft: bool = False,
) -> Mailing:
    """A scheduled mailing (``send_due`` sends it when its time comes); with ``keep_draft``
    a draft that nothing sends until ``schedule`` (the API's way: a retried creation makes
    a second draft, never a second mailing to everyone)."""
    text = check_draft(rules, draft, now)
    mailing = Mailing(
        topic=draft.topic, area=draft.area, text=text,
        status="draft" if keep_draft else "scheduled",
        scheduled_at=None if keep_draft else draft.scheduled_at or now, created_at=now,
        created_by=by[:100], operator_id=operator_id,
    )  # fmt: skip
    session.add(mailing)
    session.flush()
    audit.record(
        session, "mailing_created", now, operator_id=operator_id, actor=by[:100],
        mailing_id=mailing.id, topic=mailing.topic, area=mailing.area,
        scheduled_at=mailing.scheduled_at.isoformat() if mailing.scheduled_at else None,
    )  # fmt: skip
    return mailing


def schedule(
    session: Session, mailing: Mailing, at: datetime | None, now: datetime, *, by: str
) -> None:
    """Send a draft, or a mailing not yet started, at ``at`` (None: at once, the worker's
    next round). Asking again for the same time changes nothing."""
    if mailing.status not in ("draft", "scheduled"):
        raise MailingError(
            "Запланировать можно только черновик или рассылку, которая ещё не началась."
        )
    if at is not None and at < now - timedelta(minutes=5):
        raise MailingError("Время отправки уже прошло: укажите время не раньше текущего.")
    if at is not None and at > now + timedelta(days=366):
        raise MailingError("Время отправки дальше года: проверьте дату.")
    when = at or now
    current = as_utc(mailing.scheduled_at) if mailing.scheduled_at else None
    already = current is not None and (
        current == as_utc(when) or (at is None and current <= as_utc(now))
    )
    if mailing.status == "scheduled" and already:
        return  # so it is already: a retry
    mailing.status = "scheduled"
    mailing.scheduled_at = when
    session.add(mailing)
    audit.record(
        session, "mailing_scheduled", now, actor=by[:100], mailing_id=mailing.id,
        scheduled_at=when.isoformat(),
    )  # fmt: skip


def subscribers(session: Session) -> dict[str, dict[str, int]]:
    """Live subscriptions by topic and frequency (before the consent check, as ``audience``)."""
    counts: dict[str, dict[str, int]] = {}
    for topic, frequency, count in session.exec(
        select(Subscription.topic, Subscription.frequency, func.count())
        .where(col(Subscription.cancelled_at).is_(None))
        .group_by(col(Subscription.topic), col(Subscription.frequency))
    ).all():
        counts.setdefault(topic, {})[frequency] = int(count)
    return counts


def cancel(session: Session, mailing: Mailing, now: datetime, *, by: str) -> None:
    if mailing.status not in ("draft", "scheduled"):
        raise MailingError("Отменить можно только рассылку, которая ещё не началась.")
    mailing.status = "cancelled"
    mailing.finished_at = now
    audit.record(session, "mailing_cancelled", now, actor=by[:100], mailing_id=mailing.id)


def audience(session: Session, rules: ProactiveRules, topic_id: str, area: str | None) -> int:
    """How many live subscriptions a mailing of this topic and district would reach now
    (before the consent check, which is made for each recipient when it is sent)."""
    return int(session.exec(_audience_count(topic_id, area)).one())


def _audience_query(topic_id: str, area: str | None) -> Any:
    query = (
        select(Subscription)
        .where(Subscription.topic == topic_id)
        .where(col(Subscription.cancelled_at).is_(None))
    )
    if area is not None:
        query = query.where(
            sa.or_(col(Subscription.area) == area, col(Subscription.area).is_(None))
        )
    return query


def _audience_count(topic_id: str, area: str | None) -> Any:
    query = (
        select(func.count(col(Subscription.id)))
        .where(Subscription.topic == topic_id)
        .where(col(Subscription.cancelled_at).is_(None))
    )
    if area is not None:
        query = query.where(
            sa.or_(col(Subscription.area) == area, col(Subscription.area).is_(None))
        )
    return query


def citizen_text(
    rules: ProactiveRules, topic_id: str, body: str, channel: str, unsubscribe_url: str
) -> str:
    topic = rules.topic(topic_id)
    title = topic.title if topic else topic_id
    if channel == "email":
        return f"{body}\n\n{EMAIL_FOOTER.format(topic=title, url=unsubscribe_url)}"
    return f"{body}\n\n{FOOTER.format(topic=title)}"


@dataclass
class Unsubscribe:
    """How messages link to the one-click unsubscribe endpoint."""

    secret_key: str
    #: The service's public address, e.g. ``https://otklik.agency.example``.
    public_url: str

    def url(self, subscription_id: int) -> str:
        token = unsubscribe_token(self.secret_key, subscription_id)
        return f"{self.public_url.rstrip('/')}/unsubscribe/{token}"


def _queue(
    session: Session,
    rules: ProactiveRules,
    topic: Topic,
    subscription: Subscription,
    conversation: Conversation,
    body: str,
    now: datetime,
    key: str,
    links: Unsubscribe,
    purpose: str,
    **meta: Any,
) -> Message:
    """One proactive message in the outbox, with what the consent guard checks."""
    assert subscription.id is not None
    url = links.url(subscription.id)
    target = {k: v for k, v in conversation.reply_target.items() if k != "reply_to_message_id"}
    if conversation.channel == "email":
        target["subject"] = topic.title
    text = citizen_text(rules, topic.id, body, conversation.channel, url)
    message = workflow.queue_outbound(session, conversation, text, now, reply_target=target)
    message.idempotency_key = key
    situation = rules.situation_of(topic.service)
    message.meta = {
        "purpose": purpose,
        "citizen_id": subscription.citizen_id,
        "subscription_id": subscription.id,
        "service": topic.service,
        "situation": situation.id if situation else None,
        "buttons": [[{"id": f"{UNSUBSCRIBE_PREFIX}{subscription.id}", "text": UNSUBSCRIBE_LABEL}]],
        "unsubscribe_url": url,
        "after_close": conversation.status == "closed",
        **meta,
    }
    return message


def send_due(
    factory: sessionmaker[Session],
    rules: ProactiveRules,
    now: datetime,
    links: Unsubscribe,
    *,
    batch: int = 500,
) -> int:
    """Write the recipients (and messages) of every mailing due; how many were written.

    One transaction per batch, holding the mailing's row lock: two workers never write the
    same batch, and whatever crashes, a recipient's row and message exist together or not
    at all. A rerun skips the recipients already written (unique per mailing and citizen)."""
    written = 0
    with factory() as session:
        due = session.exec(
            select(Mailing.id)
            .where(col(Mailing.status).in_(["scheduled", "sending"]))
            .where(col(Mailing.scheduled_at) <= now)
            .order_by(col(Mailing.id))
        ).all()
    for mailing_id in due:
        assert mailing_id is not None
        while True:
            with factory() as session:
                count, done = _write_batch(session, rules, mailing_id, now, links, batch)
                session.commit()
            written += count
            if done:
                break
    return written


def _write_batch(
    session: Session,
    rules: ProactiveRules,
    mailing_id: int,
    now: datetime,
    links: Unsubscribe,
    batch: int,
) -> tuple[int, bool]:
    mailing = session.exec(select(Mailing).where(Mailing.id == mailing_id).with_for_update()).one()
    if mailing.status not in ("scheduled", "sending"):
        return 0, True
    topic = rules.topic(mailing.topic)
    if topic is None:  # the topic left the rules file: nobody can be asked about it
        mailing.status = "cancelled"
        mailing.finished_at = now
        return 0, True
    if mailing.status == "scheduled":
        mailing.status = "sending"
        mailing.started_at = now
        audit.record(session, "mailing_started", now, mailing_id=mailing_id)
    written_already = select(MailingRecipient.citizen_id).where(
        MailingRecipient.mailing_id == mailing_id
    )
    rows = session.exec(
        _audience_query(mailing.topic, mailing.area)
        .where(col(Subscription.citizen_id).not_in(written_already))
        .order_by(col(Subscription.id))
        .limit(batch)
    ).all()
    citizens = {s.citizen_id for s in rows}
    consents: dict[int, list[Consent]] = {}
    for item in session.exec(
        select(Consent)
        .where(col(Consent.citizen_id).in_(citizens))
        .where(col(Consent.withdrawn_at).is_(None))
    ).all():
        consents.setdefault(item.citizen_id, []).append(item)
    conversations = {
        c.id: c
        for c in session.exec(
            select(Conversation).where(col(Conversation.id).in_({s.conversation_id for s in rows}))
        ).all()
    }
    situation = rules.situation_of(topic.service)
    count = 0
    skipped = 0
    for subscription in rows:
        if not consent.covers(
            consents.get(subscription.citizen_id, []),
            topic.service,
            situation.id if situation else None,
        ):
            # No live consent (withdrawn, or never given): a row without a message, so the
            # figures show it and the next batch does not pick it up again.
            skipped += 1
            skip = MailingRecipient(
                mailing_id=mailing_id, citizen_id=subscription.citizen_id,
                subscription_id=subscription.id, created_at=now, skipped=True,
            )  # fmt: skip
            session.add(skip)
            continue
        recipient = MailingRecipient(
            mailing_id=mailing_id, citizen_id=subscription.citizen_id,
            subscription_id=subscription.id, created_at=now,
        )  # fmt: skip
        session.add(recipient)
        if subscription.frequency == "now":
            message = _queue(
                session, rules, topic, subscription, conversations[subscription.conversation_id],
                mailing.text, now, f"mailing-{mailing_id}-{subscription.citizen_id}", links,
                "mailing", mailing_id=mailing_id,
            )  # fmt: skip
            session.flush()
            recipient.message_id = message.id
        count += 1
    done = len(rows) < batch
    if done:
        mailing.status = "sent"
        mailing.finished_at = now
        audit.record(session, "mailing_finished", now, mailing_id=mailing_id)
    session.flush()
    return count + skipped, done


def run_round(runtime: Runtime) -> int:
    """The workers' step: write the mailings due and the digests due; how many messages."""
    settings = runtime.settings
    rules = proactive_rules(settings.rules_dir)
    links = Unsubscribe(
        settings.secret_key, settings.public_url or f"http://{settings.host}:{settings.port}"
    )
    now = runtime.clock.now()
    return send_due(runtime.factory, rules, now, links) + send_digests(
        runtime.factory, rules, now, links
    )


def send_digests(
    factory: sessionmaker[Session], rules: ProactiveRules, now: datetime, links: Unsubscribe
) -> int:
    """One message per daily or weekly subscription whose period is over, with every
    mailing written for it since its last digest; how many digests were queued.

    The digest's key is derived from its first recipient row, and the rows get its id in
    the same transaction: a rerun finds nothing pending, a crash leaves everything pending."""
    queued = 0
    with factory() as session:
        pending = session.exec(
            select(MailingRecipient.subscription_id)
            .where(col(MailingRecipient.message_id).is_(None))
            .where(MailingRecipient.skipped == sa.false())
            .distinct()
        ).all()
    for subscription_id in pending:
        with factory() as session:
            subscription = session.exec(
                select(Subscription).where(Subscription.id == subscription_id).with_for_update()
            ).one()
            period = PERIODS.get(subscription.frequency)
            last = subscription.last_digest_at or subscription.created_at
            if subscription.cancelled_at is not None or period is None:
                continue
            if last is not None and _utc(last) + period > now:
                continue
            rows = session.exec(
                select(MailingRecipient, Mailing)
                .join(Mailing, col(Mailing.id) == col(MailingRecipient.mailing_id))
                .where(MailingRecipient.subscription_id == subscription_id)
                .where(col(MailingRecipient.message_id).is_(None))
                .where(MailingRecipient.skipped == sa.false())
                .order_by(col(MailingRecipient.id))
            ).all()
            topic = rules.topic(subscription.topic)
            conversation = session.get(Conversation, subscription.conversation_id)
            if not rows or topic is None or conversation is None:
                continue
            head = DIGEST_HEAD[subscription.frequency]
            body = "\n\n".join([f"{head}: {topic.title}.", *(m.text for _, m in rows)])
            first = rows[0][0]
            message = _queue(
                session, rules, topic, subscription, conversation, body, now,
                f"digest-{subscription_id}-{first.id}", links, "digest",
                mailing_ids=[m.id for _, m in rows],
            )  # fmt: skip
            session.flush()
            for recipient, _ in rows:
                recipient.message_id = message.id
            subscription.last_digest_at = now
            session.commit()
            queued += 1
    return queued


def _utc(moment: datetime) -> datetime:
    return as_utc(moment)


@dataclass
class Figures:
    """A mailing's progress: recipients written, skipped for lack of consent, waiting for a
    digest, and their messages by delivery status."""

    recipients: int = 0
    skipped: int = 0
    in_digest: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    withheld: int = 0


def figures(session: Session, mailing_id: int) -> Figures:
    result = Figures()
    rows = session.exec(
        select(MailingRecipient.skipped, Message.delivery_status, func.count())
        .select_from(MailingRecipient)
        .outerjoin(Message, col(Message.id) == col(MailingRecipient.message_id))
        .where(MailingRecipient.mailing_id == mailing_id)
        .group_by(col(MailingRecipient.skipped), col(Message.delivery_status))
    ).all()
    for skipped, status, count in rows:
        result.recipients += count
        if skipped:
            result.skipped += count
        elif status is None:
            result.in_digest += count
        elif status in ("queued", "sending"):
            result.queued += count
        elif status == "sent":
            result.sent += count
        elif status == "failed":
            result.failed += count
        elif status == "withheld":
            result.withheld += count
    return result
