"""Screenshots of shared complaints into docs/screenshots/ (demo data, headless Chromium):
the list, one complaint with its status form, and the public tracker page.

Run: .venv/bin/python scripts/complaint_screenshots.py [--out DIR]
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from _browser import demo_runtime, logged_in, out_dir, served, snap  # type: ignore[import-not-found]
from sqlmodel import col, select

from inbox import complaints
from inbox.applications import Actor
from inbox.models import Conversation


def main() -> None:
    out = out_dir(__doc__)
    rt, clock = demo_runtime("otklik-complaints-")
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
    with served(rt) as (base, browser):
        page = logged_in(browser, base, "anna", "operator-demo")
        snap(page, f"{base}/ui/complaints", out / "complaints.png")
        snap(page, f"{base}/ui/complaints/{lights_id}", out / "complaint.png")
        public = browser.new_page(viewport={"width": 1000, "height": 800})
        snap(public, f"{base}/public/complaints/{slug}", out / "public-complaint.png")
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
