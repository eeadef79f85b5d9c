"""Screenshots of shared complaints into docs/screenshots/ (demo data, headless Chromium):
the list, one complaint with its status form, and the public tracker page.

Run: .venv/bin/python scripts/complaint_screenshots.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright
from sqlmodel import col, select

from core.clock import FrozenClock, SystemClock
from core.config import Settings
from inbox import complaints
from inbox.applications import Actor
from inbox.db import upgrade
from inbox.models import Conversation
from inbox.runtime import build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="otklik-complaints-"))
    url = f"sqlite:///{data / 'otklik.sqlite3'}"
    upgrade(url)
    clock = FrozenClock(SystemClock().now())
    rt = build_runtime(Settings(database_url=url, data_dir=data), clock=clock)
    load_demo(rt)
    zone = ZoneInfo(rt.rules.calendar.timezone)
    with rt.factory() as session:
        ids = [
            c.id
            for c in session.exec(
                select(Conversation).where(col(Conversation.kind) == "appeal").limit(4)
            )
            if c.id is not None
        ]
        lights = complaints.create(
            session, title="Не горят фонари во дворе", place="ул. Ленина, д. 5",
            topic="lighting", conversation_ids=ids[:3], actor=Actor.cli("demo"), now=clock.now(),
        )  # fmt: skip
        complaints.create(
            session, title="Яма на тротуаре у остановки", place="пр. Мира, д. 12",
            topic="roads", conversation_ids=ids[3:4], actor=Actor.cli("demo"), now=clock.now(),
        )  # fmt: skip
        session.commit()
        assert lights.id is not None
        complaints.change_status(
            session, lights.id,
            complaints.ComplaintChange("in_progress", "Бригада заменит лампы в среду."),
            Actor.cli("demo"), clock.now(), zone,
        )  # fmt: skip
        session.commit()
        slug, lights_id = lights.slug, lights.id
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/ui/login")
        page.fill("input[name=login]", "anna")
        page.fill("input[name=password]", "operator-demo")
        page.click("button[type=submit]")
        page.goto(f"{base}/ui/complaints")
        page.screenshot(path=str(OUT / "complaints.png"), full_page=True)
        page.goto(f"{base}/ui/complaints/{lights_id}")
        page.screenshot(path=str(OUT / "complaint.png"), full_page=True)
        public = browser.new_page(viewport={"width": 1000, "height": 800})
        public.goto(f"{base}/public/complaints/{slug}")
        public.screenshot(path=str(OUT / "public-complaint.png"), full_page=True)
        browser.close()
    rt.dispose()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
