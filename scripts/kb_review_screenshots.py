"""Screenshots of KB review into docs/screenshots/ (demo data, headless Chromium): the review
queue with a draft's diff, and an entry's versions with the diff of two.

Run: .venv/bin/python scripts/kb_review_screenshots.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlmodel import select

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox.db import upgrade
from inbox.kb_workflow import approve, current_data, published, save_draft
from inbox.models import Operator
from inbox.runtime import build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
ENTRY = "garbage-bulky"


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="otklik-kb-review-"))
    url = f"sqlite:///{data / 'otklik.sqlite3'}"
    upgrade(url)
    rt = build_runtime(
        Settings(database_url=url, data_dir=data), clock=FrozenClock(SystemClock().now())
    )
    load_demo(rt)
    with rt.factory() as session:
        admin = session.exec(select(Operator).where(Operator.login == "admin")).one()
        boss = session.exec(select(Operator).where(Operator.login == "svetlana")).one()
        entry = current_data(session, rt.kb, ENTRY)
        assert entry is not None
        first = save_draft(session, rt.kb, admin, {**entry, "full_answer": "Старую мебель "
                           "забирают по средам с 8 до 12 часов от каждой площадки."},
                           rt.clock.now())  # fmt: skip
        assert first.id is not None
        approve(session, boss, first.id, rt.clock.now(), None)
        session.commit()
        entry = current_data(session, rt.kb, ENTRY)
        assert entry is not None
        save_draft(session, rt.kb, admin, {**entry, "short_answer": "Мебель вывозим по средам. "
                   "Напишите нам адрес в личные сообщения."}, rt.clock.now())  # fmt: skip
        session.commit()
    published(rt.kb)
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=login]", "svetlana")
        page.fill("input[name=password]", "supervisor-demo")
        page.click("button[type=submit]")
        page.goto(f"{base}/ui/kb/review")
        page.screenshot(path=str(OUT / "kb-review.png"), full_page=True)
        page.goto(f"{base}/ui/kb/history/{ENTRY}")
        page.screenshot(path=str(OUT / "kb-history.png"), full_page=True)
        browser.close()
    rt.dispose()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
