"""Screenshots of KB review into docs/screenshots/ (demo data, headless Chromium): the review
queue with a draft's diff, and an entry's versions with the diff of two.

Run: .venv/bin/python scripts/kb_review_screenshots.py [--out DIR]
"""

from __future__ import annotations

from _browser import demo_runtime, logged_in, out_dir, served, snap  # type: ignore[import-not-found]
from sqlmodel import select

from inbox.kb_workflow import approve, current_data, published, save_draft
from inbox.models import Operator

ENTRY = "garbage-bulky"


def main() -> None:
    out = out_dir(__doc__)
    rt, _ = demo_runtime("otklik-kb-review-")
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
    with served(rt) as (base, browser):
        page = logged_in(browser, base, "svetlana", "supervisor-demo")
        snap(page, f"{base}/ui/kb/review", out / "kb-review.png")
        snap(page, f"{base}/ui/kb/history/{ENTRY}", out / "kb-history.png")
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
