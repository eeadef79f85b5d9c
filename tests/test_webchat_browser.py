"""The web chat page in a real headless Chromium: a visitor with no account talks to the bot."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlmodel import select

from core.clock import FrozenClock
from inbox.models import Conversation
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import GARBAGE_ANSWER, citizen_bot, operator_replies

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def server(runtime: Runtime, clock: FrozenClock) -> Iterator[str]:
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_visitor_gets_the_menu_asks_a_question_and_sees_the_operator_reply(
    server: str, runtime: Runtime, clock: FrozenClock
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(f"{server}/chat")
        # A fresh visitor is greeted with the main menu.
        page.get_by_role("button", name="Подать заявление").wait_for()
        assert page.locator(".msg--in").count() == 0  # the page's own greeting request is hidden
        page.get_by_label("Сообщение").fill("Во дворе не вывозят мусор <b>срочно</b>")
        page.keyboard.press("Enter")
        page.get_by_text(GARBAGE_ANSWER[:40]).wait_for()
        # The citizen's text is shown as typed, never interpreted as markup.
        assert page.locator(".msg--in .msg__text").last.text_content() == (
            "Во дворе не вывозят мусор <b>срочно</b>"
        )
        assert page.locator(".msg b").count() == 0
        page.locator(".msg__buttons").last.get_by_role("button", name="Позвать оператора").click()
        page.get_by_text("Передаю ваше обращение оператору").wait_for()
        with runtime.factory() as session:
            assert session.exec(select(Conversation)).one().status == "waiting_operator"
        operator_replies(runtime, clock, "Здравствуйте! Машина приедет сегодня.")
        page.get_by_text("Здравствуйте! Машина приедет сегодня.").wait_for(timeout=10_000)
        authors = page.locator(".msg__author").all_text_contents()
        assert authors[-1] == "Оператор"
        browser.close()
