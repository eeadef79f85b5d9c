"""Take screenshots of the main screens into docs/screenshots/ (demo data, headless Chromium).

Run: .venv/bin/python scripts/ui_screenshots.py
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from core.clock import FrozenClock, SystemClock
from core.config import RULES_DIR, Settings
from inbox import workflow
from inbox.db import upgrade
from inbox.models import Conversation, Operator, Rating
from inbox.outbox import Outbox
from inbox.runtime import build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
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
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="otklik-shots-"))
    url = f"sqlite:///{data / 'otklik.sqlite3'}"
    upgrade(url)
    clock = FrozenClock(SystemClock().now())
    rules = data / "rules"  # a private copy: the admin pages write to these files
    shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    settings = Settings(
        database_url=url, data_dir=data, rules_dir=rules, profile=rules / "agency.example.yaml"
    )
    rt = build_runtime(settings, clock=clock)
    load_demo(rt)
    _history(rt, clock)
    _applications(rt, clock)
    clock.advance(timedelta(minutes=5))
    from inbox.scheduler import run_sla_scan

    run_sla_scan(rt)
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=login]", "admin")
        page.fill("input[name=password]", "admin-demo")
        page.click("button[type=submit]")
        page.screenshot(path=str(OUT / "inbox.png"), full_page=True)
        page.click("table.queue tbody tr:first-child td.preview a")
        page.fill("#reply-text", HARD_REPLY)
        page.wait_for_selector(".verdict.bad")
        page.screenshot(path=str(OUT / "conversation.png"), full_page=True)
        page.goto(f"{base}/ui/dashboard")
        page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
        page.goto(f"{base}/ui/admin/rules")
        page.fill("#yaml-text", RULES_WITH_ERROR)
        page.click("button.primary")
        page.screenshot(path=str(OUT / "admin-rules-rejected.png"), full_page=False)
        page.goto(f"{base}/public/ratings")
        page.screenshot(path=str(OUT / "public-ratings.png"), full_page=True)
        page.goto(f"{base}/ui/applications")
        page.screenshot(path=str(OUT / "applications.png"), full_page=True)
        page.click("table.applications tbody tr:last-child a")
        page.select_option("select[name=status]", "refused")
        page.fill("textarea[name=reason]", "Этот фонарь заменят вместе со всей линией весной.")
        page.fill(
            "input[name=expected_date]", (clock.now() + timedelta(days=150)).strftime("%Y-%m-%d")
        )
        page.wait_for_selector(".app-preview .app-message")
        page.screenshot(path=str(OUT / "application.png"), full_page=True)
        page.goto(f"{base}/ui/admin/tokens")
        page.fill("input[name=name]", "1С-документооборот")
        page.check("input[value='applications:write']")
        page.click("button.primary")
        page.screenshot(path=str(OUT / "admin-tokens.png"), full_page=False)
        browser.close()
    rt.dispose()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
