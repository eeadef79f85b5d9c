"""Take screenshots of the main screens into docs/screenshots/ (demo data, headless Chromium).

Run: .venv/bin/python scripts/ui_screenshots.py [--out DIR]
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from _browser import demo_runtime, logged_in, out_dir, served, snap  # type: ignore[import-not-found]

from core.clock import FrozenClock
from inbox import workflow
from inbox.models import Conversation, Operator, Rating
from inbox.outbox import Outbox

HARD_REPLY = (
    "Здравствуйте! В целях осуществления мероприятий по обеспечению надлежащего "
    "функционирования системы теплоснабжения проводятся работы."
)


RULES_WITH_ERROR = """warn_before_minutes: 30
rules:
  - id: appeal
    when: {place: [private, email]}
    kind: appeal
    deadline: {hours: -2}
    reason: Обращение
"""


def _history(rt, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    """Answer some demo items (some late), rate them, so the dashboard has something to show."""
    from sqlmodel import select

    with rt.factory() as session:
        anna = session.exec(select(Operator).where(Operator.login == "anna")).one()
        ivan = session.exec(select(Operator).where(Operator.login == "ivan")).one()
        items = session.exec(select(Conversation).where(Conversation.kind != "other")).all()
        for index, c in enumerate(items[:5]):
            workflow.assign(session, c, anna if index % 2 else ivan, clock.now())
        for c in items[5:8]:
            workflow.reply(session, c, "Спасибо, передали в службу. Ответим сегодня.",
                           clock.now(), operator=anna)  # fmt: skip
        ratings = [(5, "garbage-not-collected"), (4, None), (5, None), (2, "garbage-bulky"),
                   (1, "garbage-bulky"), (3, "garbage-bulky"), (5, "garbage-not-collected"),
                   (4, None), (5, None), (4, None)]  # fmt: skip
        for c, (score, entry) in zip(items * 2, ratings, strict=False):
            session.add(Rating(conversation_id=c.id, score=score, kb_entry_id=entry,
                               rated_at=clock.now()))  # fmt: skip
        session.commit()

    async def sent(_message: object) -> str:
        return "ok"

    asyncio.run(Outbox(rt.factory, rt.clock, {"telegram": sent, "vk": sent}).deliver_once())


def _applications(rt, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    """Applications as the bot leaves them in the demo's private dialogues, some moved on."""
    from datetime import timedelta as days
    from zoneinfo import ZoneInfo

    from sqlmodel import col, select

    from inbox.applications import Actor, ChangeRequest, application_number, change_status
    from inbox.models import Application

    zone = ZoneInfo(rt.rules.calendar.timezone)
    forms = [
        ("lighting", "Уличное освещение", "ул. Ленина, д. 5", "Не горит фонарь у подъезда"),
        ("roads", "Ремонт дорог и тротуаров", "пр. Мира, д. 12", "Яма на тротуаре"),
        ("garbage", "Вывоз мусора", "ул. Садовая, д. 3", "Третий день не вывозят мусор"),
        ("yard", "Благоустройство двора", "ул. Лесная, д. 8", "Сломаны качели"),
    ]
    with rt.factory() as session:
        private = session.exec(
            select(Conversation)
            .where(Conversation.is_public == False)  # noqa: E712
            .where(col(Conversation.channel).in_(["telegram", "vk", "webchat"]))
        ).all()[: len(forms)]
        ids = []
        for index, (conversation, (service, title, address, what)) in enumerate(
            zip(private, forms, strict=False)
        ):
            made = clock.now() - days(days=40 if index == 3 else index)
            application = Application(
                citizen_id=conversation.citizen_id, conversation_id=conversation.id,
                service=service, created_at=made, updated_at=made,
                fields={"service": service, "service_title": title, "address": address,
                        "description": what, "phone": "+79001234567"},
            )  # fmt: skip
            session.add(application)
            session.flush()
            application.number = application_number(made.year, application.id)
            ids.append(application.id)
        session.commit()
    today = clock.now().astimezone(zone).date()
    moves = [
        (ids[1], ChangeRequest("in_progress", "Бригада приедет в среду.", None,
                               today + days(days=5))),
        (ids[2], ChangeRequest("info_needed", "Пришлите фото контейнерной площадки.")),
    ]  # fmt: skip
    for application_id, request in moves:
        with rt.factory() as session:
            change_status(session, application_id, request, Actor.cli("demo"), clock.now(), zone)
            session.commit()


def main() -> None:
    out = out_dir(__doc__)
    rt, clock = demo_runtime("otklik-shots-", private_rules=True)
    _history(rt, clock)
    _applications(rt, clock)
    clock.advance(timedelta(minutes=5))
    from inbox.scheduler import run_sla_scan

    run_sla_scan(rt)
    with served(rt) as (base, browser):
        page = logged_in(browser, base, "admin", "admin-demo")
        page.screenshot(path=str(out / "inbox.png"), full_page=True)
        page.click("table.queue tbody tr:first-child td.preview a")
        page.fill("#reply-text", HARD_REPLY)
        page.wait_for_selector(".verdict.bad")
        page.screenshot(path=str(out / "conversation.png"), full_page=True)
        snap(page, f"{base}/ui/dashboard", out / "dashboard.png")
        page.goto(f"{base}/ui/admin/rules")
        page.fill("#yaml-text", RULES_WITH_ERROR)
        page.click("button.primary")
        page.screenshot(path=str(out / "admin-rules-rejected.png"), full_page=False)
        snap(page, f"{base}/public/ratings", out / "public-ratings.png")
        snap(page, f"{base}/ui/applications", out / "applications.png")
        page.click("table.applications tbody tr:last-child a")
        page.select_option("select[name=status]", "refused")
        page.fill("textarea[name=reason]", "Этот фонарь заменят вместе со всей линией весной.")
        page.fill(
            "input[name=expected_date]", (clock.now() + timedelta(days=150)).strftime("%Y-%m-%d")
        )
        page.wait_for_selector(".app-preview .app-message")
        page.screenshot(path=str(out / "application.png"), full_page=True)
        page.goto(f"{base}/ui/admin/tokens")
        page.fill("input[name=name]", "1С-документооборот")
        page.check("input[value='applications:write']")
        page.click("button.primary")
        page.screenshot(path=str(out / "admin-tokens.png"), full_page=False)
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
