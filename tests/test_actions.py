"""Actions the UI's routes call and a command or the API can call too: the moderation
review (``inbox.workflow.review_moderation``), with its checks and audit events, without HTTP.
Saving a knowledge-base entry is a draft (``inbox.kb_workflow.save_draft``), tested in
tests/test_kb_workflow.py."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.normalize import normalize
from core.clock import FrozenClock
from core.events import Channel
from inbox import workflow
from inbox.models import AuditEvent, Conversation, Message, ModerationDecision, Operator
from inbox.runtime import Runtime
from tests.helpers.payloads import payload


def admin(runtime: Runtime) -> Operator:
    with runtime.factory() as session:
        operator = Operator(login="olga", display_name="Ольга", role="admin")
        session.add(operator)
        session.commit()
        session.refresh(operator)
        return operator


def test_moderation_review_records_a_decision_and_refuses_bad_input(
    runtime: Runtime, clock: FrozenClock
) -> None:
    event = normalize(
        Channel.telegram, payload("telegram", "private_message.json"), runtime.profile
    )
    _, processed = runtime.inbox.ingest(event.model_copy(update={"published_at": clock.now()}))
    assert processed is not None and processed.conversation_id is not None
    me = admin(runtime)
    with runtime.factory() as session:
        conversation = session.get(Conversation, processed.conversation_id)
        assert conversation is not None
        message = session.exec(
            select(Message).where(Message.conversation_id == conversation.id)
        ).first()
        assert message is not None and message.id is not None
        for action, reason, error in [
            ("delete", "спам", "неизвестное действие"),
            ("hide", "  ", "укажите причину"),
        ]:
            with pytest.raises(workflow.WorkflowError, match=error):
                workflow.review_moderation(
                    session, conversation, message.id, action, reason, me, clock.now()
                )
        with pytest.raises(workflow.WorkflowError, match="не из этого обращения"):
            workflow.review_moderation(
                session, conversation, message.id + 10_000, "hide", "x", me, clock.now()
            )
        workflow.review_moderation(
            session, conversation, message.id, "hide", " телефон в тексте ", me, clock.now()
        )
        session.commit()
        [decision] = session.exec(
            select(ModerationDecision).where(ModerationDecision.message_id == message.id)
        ).all()
        assert (decision.action, decision.reason, decision.rule_id, decision.decided_by) == (
            "hide", "телефон в тексте", "manual", "olga",
        )  # fmt: skip
        review = session.exec(
            select(AuditEvent).where(col(AuditEvent.kind) == "moderation_review")
        ).one()
        assert review.data["previous"] is None and review.operator_id == me.id
