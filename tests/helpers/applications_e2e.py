"""Browser fixtures for the applications, complaints and mailings end-to-end suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox.db import upgrade
from inbox.runtime import Runtime, build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.ui_e2e import browser  # noqa: F401 (one Chromium fixture for every e2e suite)


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
