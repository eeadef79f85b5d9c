"""In a real Chromium: an operator makes a shared complaint from an appeal; a citizen in the
web chat is offered to support it and presses +1; the operator answers everyone at once; the
citizen's chat shows the news and the public tracker shows the count, status and answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlmodel import select

from inbox.models import Conversation, SharedComplaint
from inbox.runtime import Runtime
from tests.helpers.applications_e2e import base_url, browser, clock, new_page, rt  # noqa: F401
from tests.helpers.complaints_harness import make_appeal

pytestmark = pytest.mark.e2e


def test_plus_one_in_the_web_chat_and_one_answer_for_everyone(
    browser: Browser,
    base_url: str,
    rt: Runtime,
) -> None:
    appeal = make_appeal(rt, 1)
    with rt.factory() as session:
        number = session.get(Conversation, appeal).number  # type: ignore[union-attr]
    operator = new_page(browser)
    operator.goto(f"{base_url}/ui/login")
    operator.get_by_label("Логин").fill("anna")
    operator.get_by_label("Пароль").fill("operator-demo")
    operator.get_by_role("button", name="Войти").click()
    operator.get_by_role("link", name="Общие жалобы").click()
    form = operator.locator("#new-complaint")
    form.get_by_label("Проблема").fill("Не горят фонари во дворе")
    form.get_by_label("Место").fill("ул. Ленина, д. 5")
    form.get_by_label("Тема").select_option(label="Уличное освещение")
    form.get_by_label("Номера обращений").fill(str(number))
    form.get_by_role("button", name="Создать жалобу").click()
    expect(operator.locator(".flash")).to_contain_text("Общая жалоба создана, поддерживают: 1.")
    expect(operator.locator("#complaint-supporters")).to_have_text("1")

    citizen = new_page(browser)
    citizen.goto(f"{base_url}/chat")
    citizen.get_by_role("button", name="Подать заявление").click()
    citizen.get_by_role("button", name="Уличное освещение").click()
    box = citizen.get_by_label("Сообщение")
    expect(citizen.get_by_text("Шаг 2 из 4")).to_be_visible(timeout=10_000)
    box.fill("Ленина 5")
    citizen.keyboard.press("Enter")
    expect(citizen.get_by_text("О такой проблеме уже сообщили соседи")).to_be_visible(
        timeout=10_000
    )
    citizen.get_by_role("button", name="Поддержать (+1)").click()
    expect(citizen.get_by_text("Спасибо! Вы поддержали жалобу")).to_be_visible(timeout=10_000)

    operator.reload()
    expect(operator.locator("#complaint-supporters")).to_have_text("2")
    status_form = operator.locator("#complaint-status-form")
    status_form.get_by_label("Новый статус").select_option(label="В работе")
    status_form.get_by_label("Ответ жителям").fill("Бригада заменит лампы в среду.")
    status_form.get_by_role("button", name="Изменить статус и написать всем").click()
    expect(operator.locator(".flash")).to_contain_text("Сообщений жителям в очереди: 2.")

    news = citizen.locator(".msg", has_text="Общую жалобу «Не горят фонари во дворе» взяли")
    expect(news).to_be_visible(timeout=15_000)  # the page polls every two seconds
    expect(news).to_contain_text("Ответ ведомства: Бригада заменит лампы в среду.")

    with rt.factory() as session:
        slug = session.exec(select(SharedComplaint)).one().slug
    public = new_page(browser)
    public.goto(f"{base_url}/public/complaints/{slug}")
    expect(public.locator("h1")).to_have_text("Не горят фонари во дворе")
    expect(public.locator("#supporters")).to_have_text("2")
    expect(public.locator("#status")).to_have_text("в работе")
    expect(public.locator("#answer")).to_have_text("Бригада заменит лампы в среду.")
    expect(public.locator("body")).not_to_contain_text("Житель 1")
