"""Browser fixtures for the applications, complaints and mailings end-to-end suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from core.clock import FrozenClock
from inbox.runtime import Runtime
from inbox.web.ui.live import serve_in_thread
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot
from tests.helpers.ui_e2e import browser, clock, rt  # noqa: F401 (shared by every e2e suite)


@pytest.fixture
def base_url(rt: Runtime) -> Iterator[str]:
    app = create_app(rt, start_scheduler=False)
    assert isinstance(rt.clock, FrozenClock)
    app.state.citizen_bot = citizen_bot(rt, rt.clock)
    with serve_in_thread(app) as url:
        yield url


def new_page(browser: Browser) -> Page:
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU").new_page()
