"""Issue #9, should-fix: a citizen's name or text cannot reorder what operators see.

U+202E (RIGHT-TO-LEFT OVERRIDE) in a Telegram name turns "Anna · 12:30 · Telegram" around it
into a different-looking line. Every citizen-written name and text in the operator UI is
isolated (``<bdi>``, or ``dir="auto"`` on a block), so its direction controls end at its own
edge. Checked on the rendered HTML, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from bot.normalize import normalize
from core.events import Channel
from inbox.runtime import Runtime
from otklik.demo import _tg_private, load_demo
from otklik.web import create_app

RLO = "\u202e"
NAME = f"Анна {RLO}ьнесолваноп"  # shows as «Анна поновлаесень» reversed, and so on after it
TEXT = f"Прошу проверить {RLO}отр — заявка 42"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class _Isolation(HTMLParser):
    """Every text node holding U+202E, with whether an ancestor isolates it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append((tag, tag == "bdi" or any(name == "dir" for name, _ in attrs)))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if RLO in data:
            self.found.append((data.strip(), any(isolated for _, isolated in self.stack)))


def _texts_with_rlo(html: str) -> list[tuple[str, bool]]:
    parser = _Isolation()
    parser.feed(html)
    return parser.found


def test_citizen_names_and_texts_are_isolated_in_the_operator_ui(runtime: Runtime) -> None:
    load_demo(runtime)
    raw = json.dumps(_tg_private(990777, 391990777, NAME, TEXT, runtime.clock.now()))
    _, processed = runtime.inbox.ingest(normalize(Channel.telegram, raw.encode(), runtime.profile))
    assert processed is not None and processed.conversation_id is not None
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        token = CSRF.search(client.get("/ui/login").text)
        assert token
        client.post(
            "/ui/login",
            data={"login": "anna", "password": "operator-demo", "csrf_token": token.group(1)},
        )
        inbox = client.get("/ui/inbox").text
        conversation = client.get(f"/ui/c/{processed.conversation_id}").text
    shown = _texts_with_rlo(inbox) + _texts_with_rlo(conversation)
    # the queue's preview; the name, the message and the history's preview on the page
    assert len(shown) >= 4, shown
    assert [text for text, isolated in shown if not isolated] == []
    assert any(NAME in text for text, _ in shown) and any(TEXT in text for text, _ in shown)
