"""Mailings and consent in the dialogue: subscribe to a topic (district, how often, the
consent's exact wording, «Согласен»), unsubscribe by the button under a mailing, and stop
everything with one word («стоп», ``stop_words`` of ``rules/proactive.yaml``).

``stop`` is tried before everything else, in operator mode too: a citizen who writes «стоп»
is never ignored. The subscription's buttons carry ids only; what they name is checked
again when pressed (a made-up or someone else's id changes nothing).
"""

from __future__ import annotations

from sqlmodel import select

from bot.citizen import mailing_texts as t
from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.router import Router, button
from inbox import consent, mailings, workflow
from inbox.models import Subscription

router = Router("mailings")
stop = Router("stop")
_VIA, _BY = "bot", "citizen"


def _tell(turn: Turn, text: str) -> None:
    """Answer a «стоп» or «Отписаться». While an operator has the conversation, the note goes
    out without counting as the agency's response (the operator's clock keeps running)."""
    if turn.state.mode != "operator":
        turn.say(text, texts.BACK)
        return
    message = workflow.queue_outbound(turn.session, turn.conversation, text, turn.now)
    message.meta = {"buttons": []}
    turn.session.flush()
    turn.sent.append(message)


def _is_stop(turn: Turn) -> bool:
    text = turn.input.text
    return turn.input.button is None and len(text) <= 40 and turn.context.proactive().is_stop(text)


@stop.on(_is_stop)
@stop.on(button(t.STOP_ALL))
def stop_all(turn: Turn) -> None:
    consents, cancelled = consent.withdraw_all(
        turn.session, turn.context.proactive(), turn.conversation.citizen_id, turn.now,
        via=_VIA, by=_BY, conversation_id=turn.conversation.id,
    )  # fmt: skip
    _tell(turn, t.STOPPED if consents or cancelled else t.NOTHING_TO_STOP)


@stop.on(button(mailings.UNSUBSCRIBE_PREFIX))
def unsubscribe(turn: Turn) -> None:
    assert turn.input.button is not None
    raw = turn.input.button.removeprefix(mailings.UNSUBSCRIBE_PREFIX)
    found = (
        turn.session.exec(
            select(Subscription)
            .where(Subscription.id == int(raw))
            .where(Subscription.citizen_id == turn.conversation.citizen_id)
        ).first()
        if raw.isascii() and raw.isdigit() and len(raw) <= 12
        else None
    )
    if found is None or found.cancelled_at is not None:
        _tell(turn, t.UNKNOWN)
        return
    rules = turn.context.proactive()
    mailings.unsubscribe(turn.session, rules, found, turn.now, via=_VIA, by=_BY)
    topic = rules.topic(found.topic)
    _tell(turn, t.UNSUBSCRIBED.format(topic=topic.title if topic else found.topic))


@router.on(button(texts.SUBSCRIPTIONS))
def topics(turn: Turn) -> None:
    rules = turn.context.proactive()
    rows: list[list[texts.Button]] = [
        [{"id": f"{t.TOPIC_PREFIX}{topic.id}", "text": topic.title}] for topic in rules.topics
    ]
    own = consent.live_subscriptions(turn.session, turn.conversation.citizen_id)
    text = t.TOPICS_PROMPT
    if own:
        names = ", ".join(
            f"«{topic.title}»" for s in own if (topic := rules.topic(s.topic)) is not None
        )
        text = f"{text}\n{t.MY_SUBSCRIPTIONS.format(items=names)}"
        rows.append([{"id": t.STOP_ALL, "text": t.STOP_ALL_LABEL}])
    turn.ask(None, text, [*rows, *texts.BACK])


@router.on(button(t.TOPIC_PREFIX))
def topic_picked(turn: Turn) -> None:
    assert turn.input.button is not None
    rules = turn.context.proactive()
    topic = rules.topic(turn.input.button.removeprefix(t.TOPIC_PREFIX))
    if topic is None:
        topics(turn)
        return
    if not topic.areas:
        _ask_frequency(turn, topic.id, t.ALL_AREAS)
        return
    rows: list[list[texts.Button]] = [
        [{"id": f"{t.AREA_PREFIX}{topic.id}:{a.id}", "text": a.title}] for a in rules.areas
    ]
    rows.append([{"id": f"{t.AREA_PREFIX}{topic.id}:{t.ALL_AREAS}", "text": t.ALL_AREAS_LABEL}])
    turn.ask(None, t.AREA_PROMPT, [*rows, *texts.BACK])


@router.on(button(t.AREA_PREFIX))
def area_picked(turn: Turn) -> None:
    assert turn.input.button is not None
    topic_id, _, area = turn.input.button.removeprefix(t.AREA_PREFIX).partition(":")
    _ask_frequency(turn, topic_id, area)


def _ask_frequency(turn: Turn, topic_id: str, area: str) -> None:
    rows: list[list[texts.Button]] = [
        [{"id": f"{t.FREQUENCY_PREFIX}{topic_id}:{area}:{f}", "text": label}]
        for f, label in t.FREQUENCY_LABELS.items()
    ]
    turn.ask(None, t.FREQUENCY_PROMPT, [*rows, *texts.BACK])


@router.on(button(t.FREQUENCY_PREFIX))
def frequency_picked(turn: Turn) -> None:
    """Show the consent's exact wording; «Согласен» gives it with that wording."""
    assert turn.input.button is not None
    rest = turn.input.button.removeprefix(t.FREQUENCY_PREFIX)
    rules = turn.context.proactive()
    topic = rules.topic(rest.partition(":")[0])
    if topic is None:
        topics(turn)
        return
    wording = rules.consent_text("service", topic.service)
    agree: list[list[texts.Button]] = [[{"id": f"{t.AGREE_PREFIX}{rest}", "text": t.AGREE_LABEL}]]
    turn.ask(None, t.CONSENT_PROMPT.format(wording=wording), [*agree, *texts.BACK])


@router.on(button(t.AGREE_PREFIX))
def agreed(turn: Turn) -> None:
    assert turn.input.button is not None
    parts = turn.input.button.removeprefix(t.AGREE_PREFIX).split(":")
    topic_id, area, frequency = [*parts, "", ""][:3]
    rules = turn.context.proactive()
    try:
        with turn.session.begin_nested():
            mailings.subscribe(
                turn.session, rules, turn.conversation, topic_id,
                None if area == t.ALL_AREAS else area, frequency, turn.now, via=_VIA, by=_BY,
            )  # fmt: skip
    except mailings.MailingError as exc:
        turn.say(str(exc), texts.BACK)
        return
    topic = rules.topic(topic_id)
    assert topic is not None
    text = t.SUBSCRIBED.format(topic=topic.title, frequency=mailings.FREQUENCIES[frequency])
    turn.say(text, texts.BACK)
