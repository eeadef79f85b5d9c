"""Shared complaints (+1): many citizens, one problem of one place, worked as one item.

An operator merges appeals into a shared complaint (the UI, ``otklik complaint``, the API),
or a citizen joins one from the bot (+1) when the application they are filling in matches
it (``find_match``). The complaint has one status (the application lifecycle,
``inbox.application_status``), one public answer and expected date, and one SLA clock: the
open clock of the appeal it was made from (``SharedComplaint.conversation_id``). Joining
stops the clocks of the other appeals (``sla.cancel``): operators answer the complaint, not
each appeal. The first status change the agency makes is the response that meets the clock.

``change_status`` writes the change and one message per supporter in the outbox, in one
transaction; each message's idempotency key is ``complaint-<change>-<supporter>`` (unique in
the ``message`` table), so every supporter is told once, whatever is retried or restarted.

**Matching** (``find_match``): a complaint matches an application when it is still open
(submitted, in work, information needed), its topic is the application's kind (the service
id of the bot's catalog: the citizen chose it with a button, so no guessing from free text is
needed), and its place key equals the key of the address the citizen typed
(``inbox.places.place_key``: case, «ё», punctuation, street kinds, «дом», the town, a flat
number do not count; names and house numbers do). Exact equality, never similarity: being
offered someone else's street would be worse than being offered nothing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from inbox import audit, sla, workflow
from inbox.application_status import MOVES, OPEN, ApplicationStatus, allowed_moves, parse
from inbox.applications import (
    MAX_NOTE,
    MAX_YEARS_AHEAD,
    Actor,
    ApplicationError,
    clean_text,
    today_in,
)
from inbox.complaint_texts import JOINED, TRACK, status_notice, tracker_url
from inbox.models import (
    ComplaintStatusChange,
    ComplaintSupporter,
    Conversation,
    Message,
    Operator,
    SharedComplaint,
)
from inbox.places import place_key
from rules.engine import ResponseRules

MAX_TITLE = 300
MAX_PLACE = 300
MAX_ANSWER = 1000
#: What a supporter's message is for, in ``Message.meta["purpose"]``: news of a complaint
#: the citizen supports (their own request: no consent for proactive service is needed).
PURPOSE = "complaint_status"
#: A tracker slug: 22 URL-safe characters, 128 random bits.
SLUG = re.compile(r"^[A-Za-z0-9_-]{22}$")
TOPIC = re.compile(r"^[a-z0-9_-]{1,100}$")
#: At most this many supporters told per change in one transaction (far above any yard).
MAX_SUPPORTERS = 100_000


#: The same errors as applications' (``kind``: ``invalid`` 422, ``not_found`` 404,
#: ``conflict`` 409), so that the text checks shared with them raise it too.
ComplaintError = ApplicationError


def new_slug() -> str:
    return secrets.token_urlsafe(16)


def _lock(session: Session, complaint_id: int) -> SharedComplaint | None:
    query = select(SharedComplaint).where(SharedComplaint.id == complaint_id)
    return session.exec(query.with_for_update(key_share=True)).first()


def by_slug(session: Session, slug: str) -> SharedComplaint | None:
    if not SLUG.fullmatch(slug):
        return None
    return session.exec(select(SharedComplaint).where(SharedComplaint.slug == slug)).first()


def supporters_count(session: Session, complaint_id: int) -> int:
    query = select(func.count(col(ComplaintSupporter.id))).where(
        ComplaintSupporter.complaint_id == complaint_id
    )
    return int(session.exec(query).one())


def supporters(session: Session, complaint_id: int) -> list[ComplaintSupporter]:
    return list(
        session.exec(
            select(ComplaintSupporter)
            .where(ComplaintSupporter.complaint_id == complaint_id)
            .order_by(col(ComplaintSupporter.id))
            .limit(MAX_SUPPORTERS)
        )
    )


def supporting(session: Session, conversation_id: int) -> list[SharedComplaint]:
    """The complaints an appeal was joined to (the conversation view shows them)."""
    return list(
        session.exec(
            select(SharedComplaint)
            .join(ComplaintSupporter, col(ComplaintSupporter.complaint_id) == SharedComplaint.id)
            .where(ComplaintSupporter.conversation_id == conversation_id)
            .order_by(col(SharedComplaint.id))
        )
    )


def find_match(session: Session, topic: str, place: str) -> SharedComplaint | None:
    """The open shared complaint about ``topic`` at ``place``, if any (see the module's
    docstring); the one with the most recent change when there are several."""
    key = place_key(place)
    if not key or not TOPIC.fullmatch(topic):
        return None
    return session.exec(
        select(SharedComplaint)
        .where(SharedComplaint.topic == topic)
        .where(SharedComplaint.place_key == key)
        .where(col(SharedComplaint.status).in_([s.value for s in OPEN]))
        .order_by(col(SharedComplaint.updated_at).desc(), col(SharedComplaint.id).desc())
    ).first()


def find_match_in_text(session: Session, text: str, topics: list[str]) -> SharedComplaint | None:
    """The open shared complaint a free-text message is about: of one of ``topics`` (the
    topics ``rules/complaints.yaml`` finds in the text) and whose place key appears in the
    text's key as whole words in order («на ленина 5 не горят фонари» has «ленина 5»).
    Still exact: «Ленина 15» does not contain «Ленина 5»."""
    wanted = [t for t in topics if TOPIC.fullmatch(t)]
    if not wanted:
        return None
    words = f" {place_key(text)} "
    candidates = session.exec(
        select(SharedComplaint)
        .where(col(SharedComplaint.topic).in_(wanted))
        .where(col(SharedComplaint.status).in_([s.value for s in OPEN]))
        .order_by(col(SharedComplaint.updated_at).desc(), col(SharedComplaint.id).desc())
        .limit(500)
    ).all()
    for complaint in candidates:
        # A bare street name is no place to match a message by: it needs a house number.
        if any(ch.isdigit() for ch in complaint.place_key) and f" {complaint.place_key} " in words:
            return complaint
    return None


def create(
    session: Session,
    *,
    title: str,
    place: str,
    topic: str,
    conversation_ids: list[int],
    actor: Actor,
    now: datetime,
    public_url: str = "",
    rules: ResponseRules | None = None,
) -> SharedComplaint:
    """A new shared complaint from these appeals (the first one's clock is the complaint's).

    When the first appeal has no open clock (answered before, or still with the bot) and
    ``rules`` are given, a clock starts on it now with its rule's deadline: the complaint
    always waits for the agency's answer against one deadline. Not committed: the caller
    commits."""
    clean_title = clean_text(title, "title", MAX_TITLE)
    clean_place = clean_text(place, "place", MAX_PLACE)
    if not clean_title:
        raise ComplaintError("Напишите, в чём проблема.", field="title")
    if not clean_place or not place_key(clean_place):
        raise ComplaintError("Напишите место: улицу и дом, двор или участок.", field="place")
    if not TOPIC.fullmatch(topic):
        raise ComplaintError("Выберите тему из списка.", field="topic")
    if not conversation_ids:
        raise ComplaintError("Выберите хотя бы одно обращение.", field="conversations")
    conversations = load_conversations(session, conversation_ids)
    complaint = SharedComplaint(
        slug=new_slug(), title=clean_title, place=clean_place, place_key=place_key(clean_place),
        topic=topic, conversation_id=conversations[0].id, created_at=now, updated_at=now,
        created_by=actor.label[:100],
    )  # fmt: skip
    session.add(complaint)
    session.flush()
    assert complaint.id is not None
    if rules is not None:
        _start_clock(session, conversations[0], rules, now)
    audit.record(
        session, "complaint_created", now, conversation_id=conversations[0].id,
        operator_id=actor.operator_id, actor=actor.label, complaint_id=complaint.id,
        topic=topic,
    )  # fmt: skip
    for conversation in conversations:
        join(session, complaint, conversation, actor.kind, now, actor=actor, public_url=public_url)
    return complaint


def _start_clock(
    session: Session, conversation: Conversation, rules: ResponseRules, now: datetime
) -> None:
    assert conversation.id is not None
    deadline = rules.deadline_of(conversation.rule_id)
    if deadline is None or sla.open_clock(session, conversation.id) is not None:
        return
    due = rules.due_at(now, deadline)
    assert due is not None
    sla.start_clock(
        session, conversation, rule_id=deadline.rule_id, kind=conversation.kind,
        started_at=now, due_at=due, warn_before=rules.warn_before,
    )  # fmt: skip


def load_conversations(session: Session, ids: list[int]) -> list[Conversation]:
    """The conversations of ``ids``, in that order; ComplaintError naming a missing one."""
    unique = list(dict.fromkeys(ids))
    if len(unique) > 1000:
        raise ComplaintError("Не больше 1000 обращений за раз.", field="conversations")
    odd = [i for i in unique if not 0 < i < 2**31]  # a database integer cannot hold it
    if odd:
        raise ComplaintError(f"Нет обращения с id {odd[0]}.", "not_found", "conversations")
    found = {
        c.id: c for c in session.exec(select(Conversation).where(col(Conversation.id).in_(unique)))
    }
    missing = [i for i in unique if i not in found]
    if missing:
        raise ComplaintError(
            f"Нет обращения с номером id {missing[0]}.", "not_found", "conversations"
        )
    return [found[i] for i in unique]


def join(
    session: Session,
    complaint: SharedComplaint,
    conversation: Conversation,
    via: str,
    now: datetime,
    *,
    actor: Actor | None = None,
    public_url: str = "",
    notify: bool = True,
) -> ComplaintSupporter | None:
    """Add the citizen of ``conversation`` to the complaint's supporters (None: they already
    are). Stops the appeal's own clock unless it is the complaint's; tells the citizen
    (``notify``; the bot says it in the dialogue instead). Not committed."""
    assert complaint.id is not None and conversation.id is not None
    if parse(complaint.status) not in OPEN:
        raise ComplaintError("Жалоба закрыта: к ней нельзя присоединиться.", "conflict", "status")
    exists = session.exec(
        select(ComplaintSupporter)
        .where(ComplaintSupporter.complaint_id == complaint.id)
        .where(ComplaintSupporter.citizen_id == conversation.citizen_id)
    ).first()
    if exists is not None:
        return None
    supporter = ComplaintSupporter(
        complaint_id=complaint.id, citizen_id=conversation.citizen_id,
        conversation_id=conversation.id, joined_at=now, via=via,
    )  # fmt: skip
    session.add(supporter)
    session.flush()
    if conversation.id != complaint.conversation_id:
        sla.cancel(session, conversation, now, f"joined shared complaint {complaint.id}")
    complaint.updated_at = now
    audit.record(
        session, "complaint_joined", now, conversation_id=conversation.id,
        operator_id=actor.operator_id if actor else None,
        actor=actor.label if actor else "citizen", complaint_id=complaint.id, via=via,
    )  # fmt: skip
    if notify:
        count = supporters_count(session, complaint.id)
        text = "\n".join(
            [
                JOINED.format(
                    number=conversation.number or "", title=complaint.title,
                    place=complaint.place, count=count,
                ),
                TRACK.format(url=tracker_url(public_url, complaint.slug)),
            ]
        )  # fmt: skip
        message = _news(session, conversation, text, now, f"complaint-join-{supporter.id}")
        message.meta = {"purpose": PURPOSE, "complaint_id": complaint.id, "buttons": []}
    session.flush()
    return supporter


def remove_supporter(
    session: Session, complaint_id: int, supporter_id: int, now: datetime, actor: Actor
) -> ComplaintSupporter:
    """Take a supporter off (an appeal merged by mistake); they are told of nothing more.

    The appeal the complaint was made from cannot be taken off: it carries the complaint's
    clock. The appeal's own clock is not restarted: an operator answers it as usual."""
    supporter = session.get(ComplaintSupporter, supporter_id)
    if supporter is None or supporter.complaint_id != complaint_id:
        raise ComplaintError("Такого жителя среди поддержавших нет.", "not_found", "supporter")
    complaint = _lock(session, complaint_id)
    assert complaint is not None
    if supporter.conversation_id == complaint.conversation_id:
        raise ComplaintError(
            "Это обращение, из которого сделана жалоба: по нему идёт её срок.",
            "conflict",
            "supporter",
        )
    session.delete(supporter)
    complaint.updated_at = now
    audit.record(
        session, "complaint_left", now, conversation_id=supporter.conversation_id,
        operator_id=actor.operator_id, actor=actor.label, complaint_id=complaint_id,
    )  # fmt: skip
    session.flush()
    return supporter


def _news(
    session: Session, conversation: Conversation, text: str, now: datetime, key: str
) -> Message:
    """A message that is news, not a reply: the appeal's state and clock stay as they are."""
    target = {k: v for k, v in conversation.reply_target.items() if k != "reply_to_message_id"}
    message = workflow.queue_outbound(session, conversation, text, now, reply_target=target)
    message.idempotency_key = key
    return message


@dataclass
class ComplaintChange:
    """A requested status change (checked by ``change_status``)."""

    status: str
    #: The agency's answer, public: every supporter gets it and the tracker shows it.
    answer: str | None = None
    expected_date: date | None = None
    internal_note: str | None = None


@dataclass
class ChangeOutcome:
    complaint: SharedComplaint
    change: ComplaintStatusChange
    notified: list[int] = field(default_factory=list)


def _check(
    change: ComplaintChange, current: ApplicationStatus, today: date
) -> tuple[ApplicationStatus, str | None, str | None]:
    target = parse(change.status)
    if target is None:
        known = ", ".join(s.value for s in ApplicationStatus)
        raise ComplaintError(
            f"Неизвестный статус «{change.status[:40]}». Есть: {known}.", field="status"
        )
    answer = clean_text(change.answer, "answer", MAX_ANSWER)
    note = clean_text(change.internal_note, "internal_note", MAX_NOTE)
    if target == current:
        raise ComplaintError("Жалоба уже в этом статусе.", "conflict", "status")
    if target not in MOVES[current]:
        allowed = ", ".join(s.value for s in allowed_moves(current)) or "никуда"
        raise ComplaintError(
            f"Из статуса «{current.value}» нельзя перейти в «{target.value}». Можно: {allowed}.",
            "conflict",
            "status",
        )
    if target in (ApplicationStatus.refused, ApplicationStatus.info_needed) and not answer:
        what = "почему сейчас нельзя" if target == ApplicationStatus.refused else "что нужно"
        raise ComplaintError(f"Напишите ответ жителям: {what}.", field="answer")
    if change.expected_date is not None:
        if target not in (ApplicationStatus.in_progress, ApplicationStatus.refused):
            raise ComplaintError(
                "Срок указывается только для статусов «в работе» и «отказано».",
                field="expected_date",
            )
        if change.expected_date < today:
            raise ComplaintError(
                "Срок уже прошёл: укажите дату не раньше сегодняшней.", field="expected_date"
            )
        if change.expected_date > today + timedelta(days=366 * MAX_YEARS_AHEAD):
            raise ComplaintError(
                f"Срок дальше {MAX_YEARS_AHEAD} лет: проверьте дату.", field="expected_date"
            )
    return target, answer, note


def change_status(
    session: Session,
    complaint_id: int,
    request: ComplaintChange,
    actor: Actor,
    now: datetime,
    zone: ZoneInfo,
    *,
    seen_version: int | None = None,
    public_url: str = "",
) -> ChangeOutcome:
    """Move the complaint on, meet its clock, and queue one message for every supporter.

    Not committed: the caller commits (the change, the complaint and the messages together).
    """
    complaint = _lock(session, complaint_id)
    if complaint is None:
        raise ComplaintError("Жалоба не найдена.", "not_found")
    if seen_version is not None and seen_version != complaint.version:
        raise ComplaintError(
            "Жалоба изменилась, пока вы её читали. Проверьте историю и повторите.",
            "conflict",
            "version",
        )
    current = parse(complaint.status)
    if current is None:
        raise ComplaintError(f"Неизвестный текущий статус «{complaint.status}».", "conflict")
    target, answer, note = _check(request, current, today_in(zone, now))
    change = ComplaintStatusChange(
        complaint_id=complaint_id, from_status=current.value, to_status=target.value,
        changed_at=now, actor_kind=actor.kind, actor=actor.name[:100],
        operator_id=actor.operator_id, api_token_id=actor.api_token_id, answer=answer,
        expected_date=request.expected_date, internal_note=note,
    )  # fmt: skip
    session.add(change)
    session.flush()
    assert change.id is not None
    complaint.status = target.value
    complaint.answer = answer
    complaint.expected_date = request.expected_date
    complaint.updated_at = now
    complaint.version += 1
    _meet_clock(session, complaint, now)
    text = status_notice(
        complaint.title, current.value, target.value, answer=answer,
        expected_date=request.expected_date, url=tracker_url(public_url, complaint.slug),
    )  # fmt: skip
    operator = session.get(Operator, actor.operator_id) if actor.operator_id else None
    notified = _notify_all(session, complaint, change, text, now, operator)
    change.notified = len(notified)
    audit.record(
        session, "complaint_status_changed", now, conversation_id=complaint.conversation_id,
        operator_id=actor.operator_id, actor=actor.label, complaint_id=complaint_id,
        change_id=change.id, from_status=current.value, to_status=target.value,
        notified=len(notified),
    )  # fmt: skip
    session.flush()
    return ChangeOutcome(complaint, change, notified)


def _meet_clock(session: Session, complaint: SharedComplaint, now: datetime) -> None:
    """The agency's answer is the response the complaint's one clock waited for."""
    if complaint.conversation_id is None:
        return
    conversation = workflow.lock_conversation(session, complaint.conversation_id)
    if conversation is not None:
        sla.satisfy(session, conversation, now)


def _notify_all(
    session: Session,
    complaint: SharedComplaint,
    change: ComplaintStatusChange,
    text: str,
    now: datetime,
    operator: Operator | None,
) -> list[int]:
    """One message per supporter, keyed by change and supporter (never a second one)."""
    assert complaint.id is not None
    rows = session.exec(
        select(ComplaintSupporter, Conversation)
        .join(Conversation, col(Conversation.id) == ComplaintSupporter.conversation_id)
        .where(ComplaintSupporter.complaint_id == complaint.id)
        .order_by(col(ComplaintSupporter.id))
        .limit(MAX_SUPPORTERS)
    ).all()
    messages: list[Message] = []
    for supporter, conversation in rows:
        message = _news(session, conversation, text, now, f"complaint-{change.id}-{supporter.id}")
        message.operator_id = operator.id if operator else None
        message.meta = {
            "purpose": PURPOSE, "complaint_id": complaint.id, "status_change_id": change.id,
            "buttons": [], "after_close": conversation.status == "closed",
        }  # fmt: skip
        messages.append(message)
    session.flush()  # one round of inserts for all supporters, not one per message
    return [m.id for m in messages if m.id is not None]


def history(session: Session, complaint_id: int) -> list[ComplaintStatusChange]:
    return list(
        session.exec(
            select(ComplaintStatusChange)
            .where(ComplaintStatusChange.complaint_id == complaint_id)
            .order_by(col(ComplaintStatusChange.id))
        )
    )


@dataclass
class Listed:
    complaint: SharedComplaint
    supporters: int


def search(
    session: Session,
    *,
    statuses: list[str] | None = None,
    topic: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Listed], int]:
    """One page of complaints, most recently changed first, with their supporters' counts."""
    counts = (
        select(ComplaintSupporter.complaint_id, func.count().label("n"))
        .group_by(col(ComplaintSupporter.complaint_id))
        .subquery()
    )
    query = select(SharedComplaint, sa.func.coalesce(counts.c.n, 0)).outerjoin(
        counts, counts.c.complaint_id == SharedComplaint.id
    )
    total_query = select(func.count(col(SharedComplaint.id)))
    if statuses:
        query = query.where(col(SharedComplaint.status).in_(statuses))
        total_query = total_query.where(col(SharedComplaint.status).in_(statuses))
    if topic:
        query = query.where(SharedComplaint.topic == topic)
        total_query = total_query.where(SharedComplaint.topic == topic)
    rows = session.exec(
        query.order_by(col(SharedComplaint.updated_at).desc(), col(SharedComplaint.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [Listed(c, int(n)) for c, n in rows], int(session.exec(total_query).one())
