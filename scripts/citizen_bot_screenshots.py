"""Screenshots of the citizen's side of issue #10 in the web chat into docs/screenshots/
(headless Chromium, the real bot): the consent shown before subscribing, a mailing with its
unsubscribe button, and an application's refusal with why and when.

Run: .venv/bin/python scripts/citizen_bot_screenshots.py [--out DIR]
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from _browser import demo_runtime, out_dir, served  # type: ignore[import-not-found]
from playwright.sync_api import Page, expect
from sqlmodel import select

from inbox import applications, mailings
from inbox.applications import Actor, ChangeRequest
from inbox.models import Application
from rules.proactive import proactive_rules

MAILING = "Отопление включат в понедельник. К вечеру в домах будет тепло."


def press(page: Page, name: str) -> None:
    page.locator(".msg__buttons").last.get_by_role("button", name=name).click()


def say(page: Page, text: str) -> None:
    box = page.get_by_label("Сообщение")
    box.fill(text)
    page.keyboard.press("Enter")


def main() -> None:
    out = out_dir(__doc__)
    rt, clock = demo_runtime("otklik-citizen-", demo=False)
    rules = proactive_rules(rt.settings.rules_dir)
    with served(rt) as (base, browser):

        def phone() -> Page:
            context = browser.new_context(viewport={"width": 480, "height": 860}, locale="ru-RU")
            return context.new_page()

        citizen = phone()
        citizen.goto(f"{base}/chat")
        press(citizen, "Рассылки")
        press(citizen, "Отопительный сезон")
        press(citizen, "Сразу")
        expect(citizen.get_by_text("Прочитайте и подтвердите согласие")).to_be_visible(
            timeout=10_000
        )
        citizen.screenshot(path=str(out / "webchat-consent.png"))
        press(citizen, "Согласен")
        expect(citizen.get_by_text("Готово: вы подписаны")).to_be_visible(timeout=10_000)
        with rt.factory() as session:
            draft = mailings.MailingDraft("heating_season", None, MAILING, None)
            mailings.create(session, rules, draft, clock.now(), by="svetlana")
            session.commit()
        mailings.run_round(rt)
        expect(citizen.locator(".msg", has_text=MAILING)).to_be_visible(timeout=15_000)
        citizen.screenshot(path=str(out / "webchat-mailing.png"))

        applicant = phone()  # another citizen: another session
        applicant.goto(f"{base}/chat")
        press(applicant, "Подать заявление")
        press(applicant, "Уличное освещение")
        for answer in ("ул. Ленина, д. 5", "Не горит фонарь у второго подъезда", "+79001234567"):
            applicant.wait_for_timeout(700)
            say(applicant, answer)
        expect(applicant.get_by_text("Проверьте заявление:")).to_be_visible(timeout=10_000)
        press(applicant, "Отправить")
        expect(applicant.get_by_text("Заявление принято. Его номер:")).to_be_visible(timeout=10_000)
        zone = ZoneInfo(rt.rules.calendar.timezone)
        with rt.factory() as session:
            application = session.exec(select(Application)).one()
            assert application.id is not None
            change = ChangeRequest(
                status="refused", reason="Этот фонарь заменят вместе со всей линией весной.",
                expected_date=(clock.now() + timedelta(days=150)).date(),
            )  # fmt: skip
            applications.change_status(
                session, application.id, change, Actor.cli("anna"), clock.now(), zone
            )
            session.commit()
        expect(applicant.get_by_text("сделать это сейчас нельзя")).to_be_visible(timeout=15_000)
        applicant.screenshot(path=str(out / "webchat-application-refused.png"))
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
