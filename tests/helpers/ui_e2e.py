"""Browser (headless Chromium) fixtures for the operator UI end-to-end suites."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.normalize import normalize
from core.clock import FrozenClock, SystemClock
from core.config import Settings
from core.events import Channel
from inbox.db import upgrade
from inbox.runtime import Runtime, build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import _tg_private, load_demo
from otklik.web import create_app

CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") or os.environ.get("OTKLIK_REQUIRE_E2E"):
            pytest.fail(f"{CHROMIUM} is missing (scripts/install-system-deps.sh installs it)")
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install-system-deps.sh as root")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SystemClock().now())


@pytest.fixture
def rt(tmp_path: Path, clock: FrozenClock) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'otklik.sqlite3'}"
    upgrade(url)
    runtime = build_runtime(Settings(database_url=url, data_dir=tmp_path), clock=clock)
    load_demo(runtime)
    yield runtime
    runtime.dispose()


@pytest.fixture
def base_url(rt: Runtime) -> Iterator[str]:
    with serve_in_thread(create_app(rt, start_scheduler=False)) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    yield context.new_page()
    context.close()


def log_in(page: Page, base_url: str, login: str, password: str) -> None:
    page.goto(f"{base_url}/ui/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(f"{base_url}/ui/inbox")


def ingest_appeal(rt: Runtime, text: str, update_id: int = 990100) -> int:
    raw = json.dumps(_tg_private(update_id, 391990100, "Вера", text, rt.clock.now()))
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id
