"""Screenshots of consent and mailings into docs/screenshots/ (demo data, headless Chromium):
the mailings list with a new mailing's form, one mailing with its figures, and the consents
panel of a conversation.

Run: .venv/bin/python scripts/mailing_screenshots.py [--out DIR]
"""

from __future__ import annotations

from _browser import demo_runtime, logged_in, out_dir, served, snap  # type: ignore[import-not-found]
from sqlmodel import col, select

from inbox import consent, mailings
from inbox.models import Conversation, Subscription
from rules.proactive import proactive_rules


def main() -> None:
    out = out_dir(__doc__)
    rt, clock = demo_runtime("otklik-mailings-")
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
    with served(rt) as (base, browser):
        page = logged_in(browser, base, "svetlana", "supervisor-demo")
        snap(page, f"{base}/ui/mailings", out / "mailings.png")
        snap(page, f"{base}/ui/mailings/{mailing_id}", out / "mailing.png")
        page.goto(f"{base}/ui/c/{conversation_id}")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "consent-panel.png"), full_page=True)
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
