"""KB review in a real browser (headless Chromium via Playwright): an administrator writes a
draft, the bot still answers the old text; a supervisor sees the diff and publishes it; the
bot answers with the new text from the next message on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox.db import upgrade
from inbox.runtime import Runtime, build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.kb import chat
from tests.helpers.ui_e2e import browser, log_in  # noqa: F401

pytestmark = pytest.mark.e2e

ENTRY = "garbage-bulky"
QUESTION = "как вывезти старый диван"
NEW_FULL = "Старую мебель забирают по средам с 8 до 12 часов от каждой площадки."


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'otklik.sqlite3'}"
    upgrade(url)
    settings = Settings(database_url=url, data_dir=tmp_path, secret_key="test-secret")
    runtime = build_runtime(settings, clock=FrozenClock(SystemClock().now()))
    load_demo(runtime)
    yield runtime
    runtime.dispose()


@pytest.fixture
def app(rt: Runtime) -> object:
    return create_app(rt, start_scheduler=False)


@pytest.fixture
def base_url(app: object) -> Iterator[str]:
    with serve_in_thread(app) as url:  # type: ignore[arg-type]
        yield url


def _page(chromium: Browser) -> Page:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
    return context.new_page()


def test_editor_drafts_supervisor_publishes_bot_answers_with_the_new_text(
    browser: Browser,
    base_url: str,
    app: object,
) -> None:
    before = chat(app, QUESTION)
    assert not before.startswith(NEW_FULL)

    editor = _page(browser)
    log_in(editor, base_url, "admin", "admin-demo")
    editor.goto(f"{base_url}/ui/kb/draft/{ENTRY}")
    editor.get_by_label("Полный ответ").fill(NEW_FULL)
    editor.get_by_role("button", name="Сохранить черновик").click()
    expect(editor.locator(".flash")).to_contain_text("Черновик записи «garbage-bulky» сохранён")
    draft = editor.locator(f'.kb-draft[data-entry="{ENTRY}"]')
    expect(draft).to_contain_text("Это ваш черновик")
    expect(draft.get_by_role("button", name="Опубликовать")).to_have_count(0)
    assert chat(app, QUESTION) == before  # the draft is not answered

    boss = _page(browser)
    log_in(boss, base_url, "svetlana", "supervisor-demo")
    boss.get_by_role("link", name="Проверка базы").click()
    draft = boss.locator(f'.kb-draft[data-entry="{ENTRY}"]')
    expect(draft.locator("pre.diff")).to_contain_text(f"+full_answer: {NEW_FULL}")
    draft.get_by_role("button", name="Опубликовать").click()
    expect(boss.locator(".flash")).to_contain_text("опубликована (версия 1)")
    assert chat(app, QUESTION).startswith(NEW_FULL)

    boss.goto(f"{base_url}/ui/kb/history/{ENTRY}")
    expect(boss.locator("pre.diff")).to_contain_text(f"+full_answer: {NEW_FULL}")
    expect(boss.locator("table")).to_contain_text("svetlana")


def test_a_retired_entry_is_listed_and_brought_back_after_review(
    browser: Browser,
    base_url: str,
    app: object,
) -> None:
    """An administrator retires an entry, a supervisor publishes that; on «Снятые с публикации»
    the supervisor sees who retired it and asks for it back; the administrator publishes it."""
    before = chat(app, QUESTION)
    admin = _page(browser)
    log_in(admin, base_url, "admin", "admin-demo")
    admin.goto(f"{base_url}/ui/kb/draft/{ENTRY}")
    admin.get_by_role("button", name="Снять с публикации").click()
    expect(admin.locator(".flash")).to_contain_text("«снять с публикации»")

    boss = _page(browser)
    log_in(boss, base_url, "svetlana", "supervisor-demo")
    boss.get_by_role("link", name="Проверка базы").click()
    boss.locator(f'.kb-draft[data-entry="{ENTRY}"]').get_by_role(
        "button", name="Опубликовать"
    ).click()
    expect(boss.locator(".flash")).to_contain_text("опубликована (версия 1)")
    assert chat(app, QUESTION) != before

    boss.get_by_role("link", name="Снятые с публикации").click()
    row = boss.locator(f'tr[data-entry="{ENTRY}"]')
    expect(row).to_contain_text("admin")
    expect(row).to_contain_text("svetlana")
    row.get_by_role("button", name="Вернуть").click()
    expect(boss.locator(".flash")).to_contain_text("«вернуть в публикацию»")
    draft = boss.locator(f'.kb-draft[data-entry="{ENTRY}"]')
    expect(draft).to_contain_text("Это ваш черновик")
    assert chat(app, QUESTION) != before  # not before review

    admin.goto(f"{base_url}/ui/kb/review")
    admin.locator(f'.kb-draft[data-entry="{ENTRY}"]').get_by_role(
        "button", name="Опубликовать"
    ).click()
    expect(admin.locator(".flash")).to_contain_text("опубликована (версия 2)")
    assert chat(app, QUESTION) == before
    admin.goto(f"{base_url}/ui/kb/retired")
    expect(admin.locator("main")).to_contain_text("Снятых с публикации записей нет")
