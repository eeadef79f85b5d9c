"""Mailing UI helpers."""

from __future__ import annotations

from inbox import mailings
from inbox.models import Conversation
from inbox.runtime import Runtime
from rules.proactive import SHIPPED, load_proactive_rules
from tests.helpers.applications_ui import client, login, rt  # noqa: F401

RULES = load_proactive_rules(SHIPPED)


def _subscribe(runtime: Runtime, conversation_id: int, frequency: str = "now") -> int:
    with runtime.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        subscription = mailings.subscribe(
            session, RULES, conversation, "outages", "central", frequency, runtime.clock.now(),
            via="bot", by="citizen",
        )  # fmt: skip
        session.commit()
        assert subscription.id is not None
        return subscription.id
