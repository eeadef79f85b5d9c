"""In a real Chromium: a citizen submits an application in the web chat, an operator refuses
it in the UI with why and when, and the citizen's chat page shows the message."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, expect
from sqlmodel import select

from bot.citizen import texts
from inbox.models import Application, ApplicationStatusChange
from inbox.runtime import Runtime
from tests.helpers.applications_e2e import base_url, browser, clock, new_page, rt  # noqa: F401

pytestmark = pytest.mark.e2e


def test_an_operators_refusal_with_why_and_when_reaches_the_citizens_web_chat(
    browser: Browser,
    base_url: str,
    rt: Runtime,
) -> None:
    citizen = new_page(browser)
    citizen.goto(f"{base_url}/chat")
    citizen.get_by_role("button", name="Подать заявление").click()
    citizen.get_by_role("button", name="Уличное освещение").click()
    box = citizen.get_by_label("Сообщение")
    for question, answer in (
        (texts.APPLY_ADDRESS, "ул. Ленина, д. 5"),
        (texts.APPLY_DESCRIPTION, "Не горит фонарь у второго подъезда"),
        (texts.APPLY_PHONE, "+7 900 123-45-67"),
    ):
        expect(citizen.get_by_text(question)).to_be_visible(timeout=10_000)
        box.fill(answer)
        citizen.keyboard.press("Enter")
    expect(citizen.get_by_text("Проверьте заявление:")).to_be_visible(timeout=10_000)
    citizen.locator(".msg__buttons").last.get_by_role("button", name="Отправить").click()
    expect(citizen.get_by_text("Заявление принято. Его номер:")).to_be_visible(timeout=10_000)
    with rt.factory() as session:
        number = session.exec(select(Application)).one().number
    assert number is not None

    operator = new_page(browser)
    operator.goto(f"{base_url}/ui/login")
    operator.get_by_label("Логин").fill("anna")
    operator.get_by_label("Пароль").fill("operator-demo")
    operator.get_by_role("button", name="Войти").click()
    operator.get_by_role("link", name="Заявления").click()
    operator.get_by_role("link", name=number).click()
    expect(operator.locator("#app-status")).to_have_text("Подано")
    when = date.today() + timedelta(days=150)
    operator.get_by_label("Новый статус").select_option(label="Отказано")
    operator.get_by_label("Причина отказа: почему сейчас нельзя").fill(
        "Этот фонарь заменят вместе со всей линией весной."
    )
    operator.get_by_label("Срок: когда сделаем или когда станет можно").fill(when.isoformat())
    operator.get_by_label("Внутренняя заметка").fill("линия 14 в плане ремонта")
    preview = operator.locator(".app-preview")
    expect(preview).to_contain_text("Житель получит:", timeout=10_000)
    expect(preview).to_contain_text(f"Когда будет можно: {when:%d.%m.%Y}.")
    expect(preview).to_contain_text("Читается легко")
    operator.get_by_role("button", name="Изменить статус").click()
    expect(operator.locator(".flash")).to_contain_text("Статус изменён: Отказано.")
    expect(operator.locator("#app-status")).to_have_text("Отказано")
    expect(operator.locator(".app-history")).to_contain_text("Заметка: линия 14 в плане ремонта")

    news = citizen.locator(".msg", has_text=f"Заявление {number}: сделать это сейчас нельзя.")
    expect(news).to_be_visible(timeout=15_000)  # the page polls every two seconds
    expect(news).to_contain_text("Почему: Этот фонарь заменят вместе со всей линией весной.")
    expect(news).to_contain_text(f"Когда будет можно: {when:%d.%m.%Y}.")
    expect(news).not_to_contain_text("линия 14")
    expect(news.get_by_role("button", name="История заявления")).to_be_visible()
    # the operator's page now shows the message as delivered (the page fetched it)
    operator.reload()
    expect(operator.locator(".app-history .delivery")).to_have_text("доставлено")
    with rt.factory() as session:
        [change] = session.exec(select(ApplicationStatusChange)).all()
    assert (change.actor, change.to_status, change.expected_date) == ("anna", "refused", when)
