"""The VK Callback API endpoint: confirmation, secret, journal before ``ok``, retries, outages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import select

from inbox.db import session_factory
from inbox.models import Conversation, Message
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.vk import event, journal, vk_settings


@pytest.fixture
def vk_runtime(runtime: Runtime) -> Runtime:
    return vk_settings(runtime)


@pytest.fixture
def client(vk_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(vk_runtime, start_scheduler=False)) as client:
        yield client


def test_confirmation_is_answered_with_the_configured_string(client: TestClient) -> None:
    answer = client.post("/webhooks/vk", json=event("confirmation.json"))
    assert answer.status_code == 200
    assert answer.text == "3f2a9c1b"
    assert answer.headers["content-type"].startswith("text/plain")


def test_confirmation_for_another_community_is_refused(client: TestClient) -> None:
    answer = client.post("/webhooks/vk", json=event("confirmation.json", group_id=1))
    assert answer.status_code == 403 and answer.text != "3f2a9c1b"


def test_event_with_wrong_secret_is_rejected_logged_and_not_stored(
    client: TestClient, vk_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    for secret in ("guess", None):
        data = event("message_new.json", secret=secret)
        answer = client.post("/webhooks/vk", json=data)
        assert answer.status_code == 403 and answer.text != "ok"
    assert "wrong secret" in caplog.text
    assert journal(vk_runtime) == []


def test_ok_only_after_the_event_is_in_the_journal_then_processed(
    client: TestClient, vk_runtime: Runtime
) -> None:
    answer = client.post("/webhooks/vk", json=event("message_new.json"))
    assert answer.status_code == 200 and answer.text == "ok"
    [record] = journal(vk_runtime)
    assert record.external_id == "0c5c3bbd5d7e1bb8a5e6f6c1b6e2f8d1c3a4b5c6"
    assert "secret" not in record.event["raw"]  # the credential is not kept
    assert record.processed_at is not None  # processed after the answer, in the background
    with vk_runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.kind == "appeal" and conversation.reply_target == {"peer_id": 512345678}


def test_a_retried_event_is_answered_ok_and_stored_once(
    client: TestClient, vk_runtime: Runtime
) -> None:
    for _ in range(3):
        answer = client.post(
            "/webhooks/vk", json=event("wall_reply_new.json"), headers={"X-Retry-Counter": "1"}
        )
        assert answer.text == "ok"
    assert len(journal(vk_runtime)) == 1
    with vk_runtime.factory() as session:
        assert len(session.exec(select(Message)).all()) == 1


def test_comment_reply_target_points_at_the_comment(
    client: TestClient, vk_runtime: Runtime
) -> None:
    assert client.post("/webhooks/vk", json=event("wall_reply_new_thread.json")).text == "ok"
    with vk_runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.kind == "comment" and conversation.is_public
    assert conversation.reply_target == {
        "owner_id": -200000001, "post_id": 1555, "reply_to_comment": 9880,
    }  # fmt: skip


def test_own_posts_and_messages_and_unknown_types_are_journalled_without_a_conversation(
    client: TestClient, vk_runtime: Runtime
) -> None:
    names = ["wall_post_own.json", "wall_reply_own.json", "message_reply.json", "group_join.json"]
    for name in names:
        assert client.post("/webhooks/vk", json=event(name)).text == "ok"
    unknown = event("group_join.json", type="donut_subscription_create", event_id="new-kind-1")
    assert client.post("/webhooks/vk", json=unknown).text == "ok"
    assert len(journal(vk_runtime)) == 5
    with vk_runtime.factory() as session:
        assert session.exec(select(Conversation)).all() == []


def test_photo_of_a_message_is_kept_as_an_attachment(
    client: TestClient, vk_runtime: Runtime
) -> None:
    assert client.post("/webhooks/vk", json=event("message_new_photo.json")).text == "ok"
    with vk_runtime.factory() as session:
        message = session.exec(select(Message).where(Message.direction == "in")).one()
    assert message.attachments[0]["kind"] == "photo"
    assert message.attachments[0]["ref"] == "photo567890123_457239017"


def test_malformed_event_is_refused_not_acknowledged(client: TestClient) -> None:
    assert client.post("/webhooks/vk", content=b"{not json").status_code == 400
    broken = event("wall_reply_new.json")
    broken["object"]["post_id"] = "abc"
    assert client.post("/webhooks/vk", json=broken).status_code == 400


def test_database_down_is_not_ok_so_vk_sends_the_event_again(
    vk_runtime: Runtime, db_url: str, tmp_path: Path
) -> None:
    if db_url.startswith("sqlite"):
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the database directory should be")
        down_url = f"sqlite:///{blocker}/otklik.sqlite3"
    else:
        down_url = "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    app = create_app(vk_runtime, start_scheduler=False)
    with TestClient(app) as client:
        working = vk_runtime.inbox.factory
        vk_runtime.inbox.factory = session_factory(sa.create_engine(down_url))
        answer = client.post("/webhooks/vk", json=event("message_new.json"))
        assert answer.status_code == 503 and answer.text != "ok"
        vk_runtime.inbox.factory = working  # the database is back; VK retries the event
        again = client.post("/webhooks/vk", json=event("message_new.json"))
    assert again.text == "ok"
    assert len(journal(vk_runtime)) == 1


def test_vk_endpoint_is_off_without_its_settings(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        assert client.post("/webhooks/vk", json=event("message_new.json")).status_code == 404


def test_citizens_post_on_the_community_wall_is_an_appeal(
    client: TestClient, vk_runtime: Runtime
) -> None:
    assert client.post("/webhooks/vk", json=event("wall_post_new_suggested.json")).text == "ok"
    with vk_runtime.factory() as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.kind == "appeal" and conversation.is_public
    assert conversation.source_url == "https://vk.com/wall-200000001_1560"
