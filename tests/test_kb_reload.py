"""An answer edited in the admin UI and published by another person is what the citizen bot
(web chat), the phone robot, the embedded NLU and the operators' suggestions use from the next
message on, without a restart; in another server process sharing the data directory and the
database too. Until it is published the draft is never answered. No entry file is written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.phone.robot import AFTER_ANSWER
from core.clock import FrozenClock
from core.config import Settings
from inbox.models import Conversation
from inbox.runtime import Runtime, build_runtime
from knowledge_base.entries import load_entries
from knowledge_base.nlu_backend import get_nlu_backend
from knowledge_base.store import SEED_DIR
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.kb import chat, publish_as_supervisor
from tests.helpers.phone import SECRET, call_event, post
from tests.helpers.ui import login

QUESTION = "как вывезти старый диван"
#: The edit: a question no shipped entry answers, and answers no shipped entry has.
NEW_QUESTION = "Куда сдать ёлку после праздников?"
NEW_SHORT = "Ёлки и старую мебель забирают по средам. Напишите нам в личные сообщения адрес."
NEW_SPOKEN = "Ёлки и старую мебель забирают по средам."
NEW_FULL = "Ёлки и старую мебель забирают по средам с 8 до 12 часов от каждой площадки."


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url, data_dir=tmp_path, secret_key="test-secret", phone_secret=SECRET
    )


@pytest.fixture
def rt(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = build_runtime(settings, clock=clock)
    load_demo(runtime)
    yield runtime
    runtime.dispose()


def call(client: TestClient, clock: FrozenClock, call_id: str, text: str) -> str:
    """A call: the caller says ``text`` after the greeting; what the robot says back."""
    post(client, clock, call_event("call_started.json", event_id=f"{call_id}-1", call_id=call_id))
    event = call_event("utterance.json", event_id=f"{call_id}-2", call_id=call_id, text=text)
    answer = post(client, clock, event).json()
    return str(answer["say"])


def shipped() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in SEED_DIR.glob("*.yaml")}


def test_an_edited_answer_is_said_from_the_next_message_on_without_a_restart(
    rt: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    before = shipped()
    other = build_runtime(settings, clock=clock)  # a second server process on the same database
    try:
        with (
            TestClient(create_app(rt, start_scheduler=False)) as client,
            TestClient(create_app(other, start_scheduler=False)) as other_client,
        ):
            nlu = get_nlu_backend({}, kb=rt.kb)
            old = next(e for e in load_entries(SEED_DIR) if e.id == "garbage-bulky")
            assert chat(client.app, QUESTION).startswith(old.full_answer)
            assert chat(other_client.app, QUESTION).startswith(old.full_answer)
            assert call(client, clock, "call-old", QUESTION).startswith("Старую мебель можно")
            assert nlu.parse(NEW_QUESTION.lower()).intent != "garbage-bulky"

            admin = TestClient(client.app)
            token = login(admin, "admin", "admin-demo")
            saved = admin.post(
                "/ui/admin/kb/garbage-bulky",
                data={"csrf_token": token, "question": NEW_QUESTION, "short_answer": NEW_SHORT,
                      "full_answer": NEW_FULL},
            )  # fmt: skip
            assert "Черновик сохранён, ответ изменится после проверки" in saved.text
            assert 'href="/ui/kb/review"' in saved.text
            assert chat(client.app, QUESTION).startswith(old.full_answer)  # not yet published
            publish_as_supervisor(client.app, rt, "garbage-bulky")

            assert chat(client.app, QUESTION).startswith(NEW_FULL)
            assert call(client, clock, "call-new", QUESTION) == f"{NEW_SPOKEN} {AFTER_ANSWER}"
            assert nlu.parse(NEW_QUESTION.lower()).intent == "garbage-bulky"
            # Another process looks for published versions at most once a second (the
            # provider's overlay_poll); on a quiet machine all of the above takes less.
            time.sleep(1.1)
            assert chat(other_client.app, QUESTION).startswith(NEW_FULL)
            with rt.factory() as session:  # the first chat: its history has the old answer
                asked = session.exec(
                    select(Conversation)
                    .where(Conversation.channel == "webchat")
                    .order_by(col(Conversation.id))
                ).first()
            assert asked is not None
            page = admin.get(f"/ui/c/{asked.id}").text
            suggestions = page.split("Подсказки из базы знаний")[1].split("Шаблоны")[0]
            assert old.full_answer in page
            assert NEW_FULL in suggestions and old.full_answer not in suggestions
    finally:
        other.dispose()
    assert shipped() == before
    assert not settings.effective_kb_dir.exists()  # no copy of the entry files is made
