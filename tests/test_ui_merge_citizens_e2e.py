"""The operator's «Объединить историю» in real headless Chromium: two citizens' appeals,
one history after the merge."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from bot.normalize import normalize
from core.events import Channel
from inbox.models import Citizen, Conversation
from inbox.runtime import Runtime
from otklik.demo import _tg_private
from tests.helpers.ui_e2e import base_url, browser, clock, ingest_appeal, log_in, page, rt  # noqa: F401

pytestmark = pytest.mark.e2e


def test_operator_merges_two_citizens_from_the_conversation_view(
    page: Page,
    base_url: str,
    rt: Runtime,
) -> None:
    first = ingest_appeal(rt, "Во дворе дома 9 сломанная скамейка.")
    raw = json.dumps(_tg_private(990201, 391990201, "Вера В.", "Скамейку так и не починили",
                                 rt.clock.now()))  # fmt: skip
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    with rt.factory() as session:
        other = session.get(Conversation, processed.conversation_id)
        assert other is not None and other.number is not None
    log_in(page, base_url, "anna", "operator-demo")
    page.goto(f"{base_url}/ui/c/{first}")
    history = page.locator("ol.history")
    expect(history).not_to_contain_text(other.number)
    page.get_by_label("Тот же житель писал в обращении №").fill(other.number)
    page.get_by_role("button", name="Объединить историю").click()
    expect(page.locator(".flash")).to_contain_text("Обращения объединены: это один житель.")
    expect(history).to_contain_text(other.number)
    with rt.factory() as session:
        merged = session.get(Citizen, other.citizen_id)
        assert merged is not None and merged.merged_into_id is not None
