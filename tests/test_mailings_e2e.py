"""In a real Chromium: three citizens subscribe in the web chat, one writes «стоп», a
supervisor writes a mailing in the UI (readability check, preview, schedule), and exactly
the two others' chat pages show it."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from inbox import mailings
from inbox.models import Subscription
from inbox.runtime import Runtime
from tests.helpers.applications_e2e import base_url, browser, clock, new_page, rt  # noqa: F401

import pytest  # isort: skip

pytestmark = pytest.mark.e2e

TEXT = "Отопление включат в понедельник. К вечеру в домах будет тепло."


def subscribe(page: Page, url: str) -> None:
    page.goto(f"{url}/chat")
    page.locator(".msg__buttons").last.get_by_role("button", name="Рассылки").click()
    page.locator(".msg__buttons").last.get_by_role("button", name="Отопительный сезон").click()
    page.locator(".msg__buttons").last.get_by_role("button", name="Сразу").click()
    expect(page.get_by_text("Прочитайте и подтвердите согласие")).to_be_visible(timeout=10_000)
    page.locator(".msg__buttons").last.get_by_role("button", name="Согласен").click()
    expect(page.get_by_text("Готово: вы подписаны")).to_be_visible(timeout=10_000)


def test_a_supervisors_mailing_reaches_exactly_the_two_subscribers_who_did_not_stop(
    browser: Browser,
    base_url: str,
    rt: Runtime,
) -> None:
    citizens = [new_page(browser) for _ in range(3)]
    for page in citizens:
        subscribe(page, base_url)
    box = citizens[2].get_by_label("Сообщение")
    box.fill("стоп")
    citizens[2].keyboard.press("Enter")
    expect(citizens[2].get_by_text("Вы отписались от всех рассылок")).to_be_visible(timeout=10_000)

    boss = new_page(browser)
    boss.goto(f"{base_url}/ui/login")
    boss.get_by_label("Логин").fill("svetlana")
    boss.get_by_label("Пароль").fill("supervisor-demo")
    boss.get_by_role("button", name="Войти").click()
    boss.get_by_role("link", name="Рассылки").click()
    boss.get_by_label("Тема").select_option(label="Отопительный сезон")
    boss.get_by_label("Текст").fill(TEXT)
    boss.get_by_role("button", name="Проверить").click()
    expect(boss.get_by_text("Так увидит подписчик")).to_be_visible()
    expect(boss.locator(".verdict")).to_contain_text("Читается легко")
    expect(boss.locator(".audience")).to_have_text("2")
    boss.get_by_role("button", name="Запланировать").click()
    expect(boss.locator(".flash")).to_contain_text("запланирована")

    assert mailings.run_round(rt) == 2  # the worker's outbox round
    for page in citizens[:2]:
        news = page.locator(".msg", has_text=TEXT)
        expect(news).to_be_visible(timeout=15_000)  # the page polls every two seconds
        expect(news.get_by_role("button", name="Отписаться")).to_be_visible()
    citizens[2].wait_for_timeout(3000)  # two polls of the page
    expect(citizens[2].locator(".msg", has_text=TEXT)).to_have_count(0)
    boss.reload()
    expect(boss.locator("#mailing-recipients")).to_have_text("2")
    expect(boss.locator("#mailing-sent")).to_have_text("2")
    with rt.factory() as session:
        live = session.exec(select(Subscription).where(Subscription.cancelled_at == None))  # noqa: E711
        assert len(live.all()) == 2
