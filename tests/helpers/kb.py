"""Knowledge-base helpers shared by the KB suites: a web-chat question, a second person's
publish on «Проверка базы», and a shipped-file upgrade."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from inbox.kb_workflow import open_revision
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.ui import login


@pytest.fixture
def app(rt: Runtime) -> Iterator[object]:
    """The app, started (its lifespan runs while the test does, as in production)."""
    with TestClient(create_app(rt, start_scheduler=False)) as running:
        yield running.app


def client_of(app: object) -> contextlib.nullcontext[TestClient]:
    """A browser of its own (not a context manager: that would stop the app at its end)."""
    return contextlib.nullcontext(TestClient(app))  # type: ignore[arg-type]


def chat(app: object, text: str) -> str:
    """A new web-chat visitor asks ``text``; the bot's answer."""
    visitor = TestClient(app)  # type: ignore[arg-type]
    assert visitor.get("/chat").status_code == 200
    assert visitor.post("/api/chat/messages", json={"text": text}).status_code == 200
    mine, bots = visitor.get("/api/chat/messages").json()
    assert mine["text"] == text and bots["author"] == "Бот"
    return str(bots["text"])


def publish_as_supervisor(app: object, rt: Runtime, entry_id: str) -> str:
    """Another person (the demo supervisor) publishes the open draft of ``entry_id`` on
    «Проверка базы»; the page they see after it."""
    reviewer = TestClient(app)  # type: ignore[arg-type]
    token = login(reviewer, "svetlana", "supervisor-demo")
    with rt.factory() as session:
        row = open_revision(session, entry_id)
    assert row is not None and row.status == "draft", row
    page = reviewer.post(f"/ui/kb/review/{row.id}/approve", data={"csrf_token": token})
    assert f"Запись «{entry_id}» опубликована" in page.text, page.text[-3000:]
    return page.text


def upgrade_shipped(kb_dir: Path, entry_id: str, **fields: object) -> None:
    """Change the shipped entry ``entry_id`` in the files, as a package upgrade does."""
    for path in sorted(kb_dir.glob("*.yaml")):
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for item in items:
            if item.get("id") == entry_id:
                item.update(fields)
                path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
                return
    raise AssertionError(entry_id)
