"""Screenshots of consent and mailings into docs/screenshots/ (demo data, headless Chromium):
the mailings list with a new mailing's form, one mailing with its figures, and the consents
panel of a conversation.

Run: .venv/bin/python scripts/mailing_screenshots.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlmodel import col, select

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox import consent, mailings
from inbox.db import upgrade
from inbox.models import Conversation, Subscription
from inbox.runtime import build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app
from rules.proactive import proactive_rules

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="otklik-mailings-"))
    url = f"sqlite:///{data / 'otklik.sqlite3'}"
    upgrade(url)
    clock = FrozenClock(SystemClock().now())
    rt = build_runtime(Settings(database_url=url, data_dir=data), clock=clock)
    load_demo(rt)
    rules = proactive_rules(rt.settings.rules_dir)
    now = clock.now()
    with rt.factory() as session:
        chats = list(
            session.exec(
                select(Conversation).where(col(Conversation.channel).in_(["telegram", "vk"]))
            )
        )
        for conversation in chats:
            assert conversation.id is not None
            consent.give(
                session, rules, conversation.citizen_id, "service", "outages", now,
                via="bot", by="citizen", conversation_id=conversation.id,
            )  # fmt: skip
            session.add(Subscription(
                citizen_id=conversation.citizen_id, topic="outages", frequency="now",
                conversation_id=conversation.id, created_at=now,
            ))  # fmt: skip
        session.commit()
        mailing = mailings.create(
            session, rules,
            mailings.MailingDraft(
                "outages", None, "Завтра с 9 до 17 часов не будет горячей воды в домах на улице "
                "Ленина. Воду дадут к вечеру.", None,
            ),
            now, by="svetlana",
        )  # fmt: skip
        session.commit()
        mailing_id, conversation_id = mailing.id, chats[0].id
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=login]", "svetlana")
        page.fill("input[name=password]", "supervisor-demo")
        page.click("button[type=submit]")
        page.goto(f"{base}/ui/mailings")
        page.screenshot(path=str(OUT / "mailings.png"), full_page=True)
        page.goto(f"{base}/ui/mailings/{mailing_id}")
        page.screenshot(path=str(OUT / "mailing.png"), full_page=True)
        page.goto(f"{base}/ui/c/{conversation_id}")
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / "consent-panel.png"), full_page=True)
        browser.close()
    rt.dispose()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
