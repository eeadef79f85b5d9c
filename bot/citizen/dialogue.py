"""One turn of the dialogue: the citizen's input, the state kept in the database, the replies.

The dialogue state lives in the audit log (``AuditEvent`` of kind ``bot_state``, the latest
one of the conversation wins), so a restart loses nothing and the history of the dialogue
stays visible to supervisors. Replies go through ``inbox.workflow.reply`` into the outbox:
stored first, delivered by the outbox worker; buttons travel in ``Message.meta["buttons"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from bot.citizen.texts import Button
from inbox import audit, sla, workflow
from inbox.models import AuditEvent, Conversation, ConversationStatus, Message
from knowledge_base.search import KnowledgeBase
from knowledge_base.store import KnowledgeBaseProvider, as_provider
from rules.catalog import Catalog
from rules.complaints import ComplaintRules, complaint_rules
from rules.engine import ResponseRules
from rules.proactive import SHIPPED, ProactiveRules, proactive_rules
from rules.reloadable import Reloadable, as_reloadable

STATE_EVENT = "bot_state"


class BotInput(BaseModel):
    """What the citizen sent: typed text, or a pressed button, with any attachments."""

    text: str = ""
    button: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    #: It reached the bot long after it arrived (``CitizenBot.handle_pending``).
    late: bool = False


class DialogueState(BaseModel):
    #: ``bot`` while the bot leads; ``operator`` after a hand-off (the bot then keeps quiet).
    mode: str = "bot"
    #: The question the bot waits an answer to (a form field), if any.
    step: str | None = None
    #: Answers collected so far by the form in progress.
    form: dict[str, str] = Field(default_factory=dict)


@dataclass
class BotContext:
    """What handlers may use besides the turn: the knowledge base, rules, catalog, settings.

    ``kb`` is the app's shared provider (an edit in the admin UI is answered with from the
    next message on) or a fixed ``KnowledgeBase``; handlers read it through ``knowledge_base``.
    """

    kb: KnowledgeBase | KnowledgeBaseProvider
    #: The runtime's reloadable rules (an admin's edit applies from the next turn) or fixed ones.
    rules_source: ResponseRules | Reloadable[ResponseRules]
    catalog: Catalog
    payment_url_template: str
    #: ``OTKLIK_PUBLIC_URL``: links to public pages (a shared complaint's tracker).
    public_url: str = ""
    #: Topic words for +1 offers on free text (``rules/complaints.yaml``).
    complaint_rules: ComplaintRules = field(default_factory=lambda: complaint_rules(None))
    #: Where ``proactive.yaml`` is read from (None: the shipped rules).
    rules_dir: Path | None = None
    _kb: KnowledgeBaseProvider = field(init=False, repr=False)
    _rules: Reloadable[ResponseRules] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._kb = as_provider(self.kb)
        self._rules = as_reloadable(self.rules_source)

    @property
    def rules(self) -> ResponseRules:
        """The response rules as their files say now."""
        return self._rules.get()

    def proactive(self) -> ProactiveRules:
        """Consent scopes and mailing topics (``rules/proactive.yaml``, re-read on change)."""
        return proactive_rules(self.rules_dir or SHIPPED.parent)

    def knowledge_base(self) -> KnowledgeBase:
        """The knowledge base to answer this turn with (the current one)."""
        return self._kb.get()


@dataclass
class Turn:
    session: Session
    conversation: Conversation
    input: BotInput
    state: DialogueState
    now: datetime
    context: BotContext
    sent: list[Message] = field(default_factory=list)

    def say(self, text: str, buttons: list[list[Button]] | None = None, **meta: Any) -> Message:
        """Queue the bot's reply in the outbox (through the workflow: it counts as a response)."""
        if self.conversation.status == ConversationStatus.new.value:
            workflow.to_bot(self.session, self.conversation, self.now)
        message = workflow.reply(self.session, self.conversation, text, self.now)
        message.meta = {"buttons": buttons or [], **meta}
        self.sent.append(message)
        return message

    def handoff(self, reason: str, text: str) -> None:
        """Tell the citizen, then queue the conversation for an operator (a fresh clock)."""
        self.say(text.format(number=self.conversation.number))
        workflow.handoff(self.session, self.conversation, self.now, self.context.rules, reason)
        self.state.mode = "operator"
        self.state.step = None
        self.state.form = {}

    def finish(self) -> None:
        """After the bot answered, the dialogue stays with the bot (status ``bot``, not
        ``answered``): the inbox then leaves it there when the citizen writes again, and
        operators see at a glance which conversations the bot is leading."""
        answered = self.conversation.status == ConversationStatus.answered.value
        if self.sent and answered and self.state.mode == "bot":
            workflow.to_bot(self.session, self.conversation, self.now)

    def ask(self, step: str | None, text: str, buttons: list[list[Button]] | None = None) -> None:
        """Say ``text`` and wait for the answer to ``step`` (None: nothing is awaited)."""
        self.state.step = step
        self.say(text, buttons)


#: ``load_state``'s query, built once: the latest state, and whether a clock is open.
_STATE = select(
    select(AuditEvent.data)
    .where(AuditEvent.conversation_id == sa.bindparam("conversation_id"))
    .where(AuditEvent.kind == STATE_EVENT)
    .order_by(col(AuditEvent.id).desc())
    .limit(1)
    .scalar_subquery(),
    sla.open_clock_exists(sa.bindparam("conversation_id")),
)


def load_state(session: Session, conversation_id: int) -> DialogueState:
    """The dialogue's state, read with the conversation locked.

    The same query asks whether the conversation has an open SLA clock and tells the session
    when it has none (``sla.none_stored``): the reply's ``sla.satisfy`` then asks nothing.
    """
    data, clock_open = session.exec(_STATE, params={"conversation_id": conversation_id}).one()
    if not clock_open:
        sla.none_stored(session, conversation_id)
    return DialogueState.model_validate(data) if data is not None else DialogueState()


def save_state(
    session: Session,
    conversation_id: int,
    before: DialogueState,
    after: DialogueState,
    now: datetime,
) -> None:
    """Append the new state when it changed (the log keeps every step of the dialogue)."""
    if after != before:
        audit.record(
            session, STATE_EVENT, now, conversation_id=conversation_id, actor="bot",
            **after.model_dump(),
        )  # fmt: skip
