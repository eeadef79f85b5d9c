"""The citizen bot's entry points for channel adapters.

``CitizenBot.handle`` runs one turn for an inbound event the inbox has processed: it loads the
dialogue state, dispatches to the handlers and stores the replies in the outbox, all in one
transaction. ``handle_pending`` is the same turn for an event ``Inbox.process_pending``
finished instead of the webhook; when that is late (``late_after``), the bot does not take up
the stale message itself but hands it to an operator with an apology (docs/citizen-bot.md).
``ask_for_ratings`` asks citizens to rate conversations an operator closed, and ``rate``
stores the answer (a ``Rating``, with the KB entry when the last answer came from it) when
``bot.citizen.rating`` says the presser may give it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col, select

from bot.citizen import rating, texts
from bot.citizen.dialogue import BotContext, BotInput, Turn, load_state, save_state
from bot.citizen.handlers import build_root
from bot.citizen.rating import RATING_REQUESTED
from core.clock import Clock
from core.config import Settings
from core.events import Channel, InboundEvent, Place
from inbox import audit, workflow
from inbox.ingest import Finished, Processed, find_last_conversation
from inbox.models import (
    AuditEvent,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Rating,
)
from knowledge_base.search import KnowledgeBase
from knowledge_base.store import KnowledgeBaseProvider
from rules.catalog import Catalog, load_catalog
from rules.complaints import complaint_rules
from rules.engine import ResponseRules
from rules.reloadable import Reloadable

log = logging.getLogger(__name__)

#: Channels where the bot talks to the citizen in a private dialogue.
BOT_CHANNELS = (
    Channel.telegram.value,
    Channel.webchat.value,
    Channel.vk.value,
    Channel.max.value,
)
#: Thread keys of VK group chats (``bot.vk.parse``): private, yet no dialogue with the bot.
VK_GROUP_CHAT_THREADS = "vk:peer:%:from:%"
#: A message ``process_pending`` finishes later than this after it arrived is not taken up by
#: the bot's dialogue: an operator gets it (``OTKLIK_BOT_LATE_AFTER``, in seconds).
LATE_AFTER = timedelta(minutes=10)


def bot_input(event: InboundEvent, late: bool = False) -> BotInput:
    button = event.facts.extra.get("button")
    return BotInput(
        text=event.text if button is None else "",
        button=str(button) if button is not None else None,
        attachments=[a.model_dump(mode="json") for a in event.attachments],
        late=late,
    )


def is_dialogue(event: InboundEvent) -> bool:
    """The bot speaks only in private dialogues (a Telegram private chat, VK private messages,
    a MAX dialog, the web chat), not in group chats, and does not answer an edit of a message
    again."""
    facts = event.facts
    return (
        event.channel.value in BOT_CHANNELS
        and not facts.is_public
        and facts.place != Place.group
        and not (facts.is_own or event.author.is_bot or facts.extra.get("edited"))
    )


class CitizenBot:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        context: BotContext,
        late_after: timedelta = LATE_AFTER,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.context = context
        self.late_after = late_after
        self.root = build_root()

    @classmethod
    def from_settings(
        cls,
        factory: sessionmaker[Session],
        clock: Clock,
        rules: ResponseRules | Reloadable[ResponseRules],
        settings: Settings,
        kb: KnowledgeBase | KnowledgeBaseProvider | None = None,
        catalog: Catalog | None = None,
    ) -> CitizenBot:
        """The bot over ``kb``: the app passes its shared provider; without one, a provider
        of the settings' ``kb_dir`` is made (loaded on the first question)."""
        context = BotContext(
            kb=kb if kb is not None else KnowledgeBaseProvider(settings.effective_kb_dir),
            rules_source=rules,
            catalog=catalog or load_catalog(settings.bot_catalog),
            payment_url_template=settings.payment_url_template,
            public_url=settings.public_url,
            complaint_rules=complaint_rules(settings.rules_dir),
            rules_dir=settings.rules_dir,
        )
        return cls(factory, clock, context, timedelta(seconds=settings.bot_late_after))

    def handle(
        self, processed: Processed | None, event: InboundEvent, *, late: bool = False
    ) -> list[int]:
        """Run the bot's turn for a processed inbound event; the ids of the queued replies.

        ``late``: the message waited too long for processing to be taken up by the dialogue
        (see ``handle_pending``)."""
        if not is_dialogue(event):
            return []
        data = bot_input(event, late)
        if data.button and data.button.startswith(texts.RATE_PREFIX):
            return self.rate(event, data.button)
        if processed is None or processed.conversation_id is None:
            return []
        with self.factory() as session:
            # The turn's audit rows (state changes, the reply, the dialogue state) in one
            # INSERT at commit, not one each between the lookups.
            audit.collect(session)
            conversation = workflow.lock_conversation(session, processed.conversation_id)
            assert conversation is not None  # conversations are never deleted
            if conversation.status == ConversationStatus.closed.value:
                return []
            assert conversation.id is not None
            before = load_state(session, conversation.id)
            turn = Turn(
                session, conversation, data, before.model_copy(deep=True), self.clock.now(),
                self.context,
            )  # fmt: skip
            self.root.dispatch(turn)
            turn.finish()
            save_state(session, conversation.id, before, turn.state, turn.now)
            session.commit()
            return [m.id for m in turn.sent if m.id is not None]

    def handle_pending(self, finished: Finished) -> list[int]:
        """The turn for an event ``Inbox.process_pending`` processed (the webhook could not:
        its executor was full, processing failed, the server stopped). The inbox's
        ``after_processing`` hook for the bot's channels; runs once per event, since only the
        call that processed the event gets it.

        Within ``late_after`` of its arrival it is the webhook's turn, unchanged. Later, the
        bot does not take the stale message up (an answer, a form step, a menu, hours late
        and perhaps after newer messages): unless an operator already has the conversation
        (the bot then keeps quiet, as always), it hands it to an operator with an apology.
        """
        late = self.clock.now() - finished.received_at > self.late_after
        return self.handle(finished.processed, finished.event, late=late)

    # -- ratings ----------------------------------------------------------------------------
    def ask_for_ratings(self, within: timedelta = timedelta(days=2)) -> list[int]:
        """Ask for a 1-5 rating in every bot dialogue closed recently and not asked yet."""
        now = self.clock.now()
        asked = select(AuditEvent.conversation_id).where(AuditEvent.kind == RATING_REQUESTED)
        with self.factory() as session:
            closed = session.exec(
                select(Conversation)
                .where(Conversation.status == ConversationStatus.closed.value)
                .where(col(Conversation.channel).in_(BOT_CHANNELS))
                .where(Conversation.is_public == sa.false())
                .where(col(Conversation.thread_key).not_like(VK_GROUP_CHAT_THREADS))
                .where(col(Conversation.closed_at) >= now - within)
                .where(
                    col(Conversation.id).not_in(
                        asked.where(col(AuditEvent.conversation_id).is_not(None))
                    )
                )
                .limit(100)
            ).all()
            queued: list[int] = []
            for conversation in closed:
                assert conversation.id is not None
                message = _queue_after_close(
                    session, conversation,
                    texts.RATE_PROMPT.format(number=conversation.number), now,
                    texts.rating_buttons(conversation.id),
                )  # fmt: skip
                audit.record(
                    session, RATING_REQUESTED, now, conversation_id=conversation.id, actor="bot",
                    message_id=message.id,
                )  # fmt: skip
                assert message.id is not None
                queued.append(message.id)
            session.commit()
            return queued

    def rate(self, event: InboundEvent, pressed: str) -> list[int]:
        """Store the rating a citizen pressed (``rate:<conversation>:<score>``) if they may
        (``bot.citizen.rating``: their own closed conversation, asked, once); else a polite
        refusal and no rating. The reply goes to the rated conversation when it is the
        citizen's, else to the citizen's last conversation in this dialogue; with none, no
        message is queued (the web chat and Telegram then show ``texts.RATE_REFUSED`` as the
        press's note)."""
        parsed = rating.parse(pressed)
        now = self.clock.now()
        with self.factory() as session:
            conversation = (
                workflow.lock_conversation(session, parsed[0]) if parsed is not None else None
            )
            if parsed is None:
                refused: rating.Refusal | None = rating.Refusal.malformed
            elif conversation is None:
                refused = rating.Refusal.foreign
            else:
                refused = rating.refusal(session, event, conversation)
            if refused is None:
                assert parsed is not None and conversation is not None
                conversation_id, score = parsed
                session.add(
                    Rating(
                        conversation_id=conversation_id,
                        score=score,
                        kb_entry_id=_last_kb_entry(session, conversation_id),
                        rated_at=now,
                    )
                )
                audit.record(
                    session, "rated", now, conversation_id=conversation_id, actor="citizen",
                    score=score,
                )  # fmt: skip
                target: Conversation | None = conversation
                text = texts.RATE_THANKS
            else:
                own = conversation is not None and refused != rating.Refusal.foreign
                target = conversation if own else find_last_conversation(
                    session, event.channel.value, event.thread_key
                )  # fmt: skip
                text = rating.REPLIES[refused]
                log.warning(
                    "rating press refused (%s) on %s: %r", refused.value, event.channel.value,
                    pressed[:80],
                )  # fmt: skip
                audit.record(
                    session, "rating_refused", now,
                    conversation_id=target.id if target is not None else None, actor="citizen",
                    reason=refused.value, pressed=pressed[:80],
                )  # fmt: skip
            message = _queue_after_close(session, target, text, now, []) if target else None
            session.commit()
            return [message.id] if message is not None and message.id is not None else []


def _last_kb_entry(session: Session, conversation_id: int) -> str | None:
    """The KB entry of the last answer given before the rating request, if it came from the KB."""
    answers = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .where(Message.direction == Direction.outbound.value)
        .order_by(col(Message.id).desc())
    ).all()
    for message in answers:
        if message.meta.get("after_close"):
            continue
        entry = message.meta.get("kb_entry_id")
        return str(entry) if entry else None
    return None


def _queue_after_close(
    session: Session,
    conversation: Conversation,
    text: str,
    now: datetime,
    buttons: list[list[texts.Button]],
) -> Message:
    """A bot message outside the dialogue's turns (rating request, thanks, a refused rating),
    mostly on a closed conversation: it is no response to an appeal, so it goes to the outbox
    without the workflow's state change."""
    target = {k: v for k, v in conversation.reply_target.items() if k != "reply_to_message_id"}
    message = workflow.queue_outbound(session, conversation, text, now, reply_target=target)
    message.meta = {"buttons": buttons, "after_close": True}
    session.flush()
    return message
