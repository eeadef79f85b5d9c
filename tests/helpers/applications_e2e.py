"""Browser fixtures for the applications, complaints and mailings end-to-end suites."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox.db import upgrade
from inbox.runtime import Runtime, build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot

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
def rt(tmp_path: Path) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'otklik.sqlite3'}"
    upgrade(url)
    clock = FrozenClock(SystemClock().now())
    runtime = build_runtime(Settings(database_url=url, data_dir=tmp_path), clock=clock)
    load_demo(runtime)
    yield runtime
    runtime.dispose()


@pytest.fixture
def base_url(rt: Runtime) -> Iterator[str]:
    app = create_app(rt, start_scheduler=False)
    assert isinstance(rt.clock, FrozenClock)
    app.state.citizen_bot = citizen_bot(rt, rt.clock)
    with serve_in_thread(app) as url:
        yield url


def new_page(browser: Browser) -> Page:
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU").new_page()
