"""The KB's «почему и когда» in a real browser (headless Chromium via Playwright).

htmx sends the whole entry form with each live readability request, so the verdict under
each field must be about that field; the operator's button puts the answer with its «why
and when» into the reply box.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from bot.normalize import normalize
from core.events import Channel
from inbox.runtime import Runtime
from knowledge_base.entries import load_entries
from knowledge_base.store import SEED_DIR
from otklik.demo import _tg_private
from tests.helpers.ui_e2e import base_url, browser, clock, log_in, page, rt  # noqa: F401

pytestmark = pytest.mark.e2e


def test_each_field_of_the_entry_form_gets_its_own_live_verdict(page: Page, base_url: str) -> None:
    log_in(page, base_url, "admin", "admin-demo")
    page.goto(f"{base_url}/ui/admin/kb/zhkh-capital-repair")
    why = page.get_by_label("Почему нельзя сейчас")
    expect(why).to_have_value(
        "Мы не можем сдвинуть ремонт одного дома. Очерёдность задаёт программа по износу домов."
    )
    why.fill(
        "Осуществление переноса сроков проведения капитального ремонта не представляется "
        "возможным в связи с утверждением региональной программы в установленном порядке."
    )
    expect(page.locator("#why-verdict")).to_contain_text("Текст сложный", timeout=10_000)
    page.get_by_label("Короткий ответ (для комментариев)").fill("Ремонт будет в 2027 году.")
    expect(page.locator("#short-verdict")).to_contain_text("Читается легко", timeout=10_000)
    expect(page.locator("#why-verdict")).to_contain_text("Текст сложный")
    page.get_by_role("button", name="Сохранить черновик").click()
    flash = page.locator(".flash[role=status]")
    expect(flash).to_contain_text("Черновик сохранён, ответ изменится после проверки")
    flash.get_by_role("link", name="Проверка базы").click()
    expect(page).to_have_url(f"{base_url}/ui/kb/review")
    draft = page.locator('.kb-draft[data-entry="zhkh-capital-repair"]')
    expect(draft).to_contain_text("Ремонт будет в 2027 году.")
    expect(draft).to_contain_text("Это ваш черновик")


def test_operator_inserts_the_answer_with_why_and_when(
    page: Page, base_url: str, rt: Runtime
) -> None:
    entry = next(e for e in load_entries(SEED_DIR) if e.id == "zhkh-capital-repair")
    raw = json.dumps(_tg_private(990300, 391990300, "Олег", "Когда капремонт в нашем доме?",
                                 rt.clock.now()))  # fmt: skip
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None
    log_in(page, base_url, "anna", "operator-demo")
    page.goto(f"{base_url}/ui/c/{processed.conversation_id}")
    hint = page.locator(".hint").first
    expect(hint.locator(".why-when")).to_contain_text(str(entry.cannot_because))
    expect(hint.locator(".why-when")).to_contain_text(str(entry.available_when))
    hint.get_by_role("button", name="Вставить с «почему и когда»").click()
    expect(page.get_by_label("Текст ответа")).to_have_value(
        f"{entry.full_answer} {entry.cannot_because} {entry.available_when}"
    )
    expect(page.locator("#readability")).not_to_contain_text("Начните писать", timeout=10_000)
