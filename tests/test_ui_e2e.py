"""The operator UI in a real browser (Debian's headless Chromium driven by Playwright).

The app runs under uvicorn in a thread on a free loopback port, with a temporary SQLite
database, the demo data and a frozen clock the test moves.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from core.clock import FrozenClock
from inbox.models import Conversation, Message
from inbox.outbox import Outbox
from inbox.runtime import Runtime
from inbox.scheduler import run_sla_scan
from tests.helpers.ui_e2e import base_url, browser, clock, ingest_appeal, log_in, page, rt  # noqa: F401

pytestmark = pytest.mark.e2e


def deliver(rt: Runtime, sent: list[str]) -> None:
    """Run one outbox pass with a Telegram sender that records what it sends.

    In its own thread: Playwright's sync API owns an event loop in this one.
    """

    async def telegram(message: Message) -> str:
        sent.append(message.text)
        return f"tg-{len(sent)}"

    outbox = Outbox(rt.factory, rt.clock, {"telegram": telegram})
    worker = threading.Thread(target=lambda: asyncio.run(outbox.deliver_once()))
    worker.start()
    worker.join(30)


def test_operator_sees_an_appeal_arrive_live_takes_it_and_answers(
    page: Page,
    base_url: str,
    rt: Runtime,
) -> None:
    log_in(page, base_url, "anna", "operator-demo")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#queue")).not_to_contain_text("сломанная скамейка")
    cid = ingest_appeal(rt, "Во дворе дома 9 сломанная скамейка, дети могут пораниться.")

    row = page.locator("#queue tr", has_text="сломанная скамейка")
    expect(row).to_be_visible(timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True  # it arrived without a reload
    expect(row.locator(".countdown")).to_have_class("countdown ok")
    expect(row.locator(".countdown")).to_contain_text("осталось 1 ч 59 мин")

    row.get_by_role("link", name="сломанная скамейка").click()
    expect(page).to_have_url(f"{base_url}/ui/c/{cid}")
    page.get_by_role("button", name="Взять в работу").click()
    expect(page.locator("#assignee")).to_have_text("Анна Петрова")

    reply = "Вера, спасибо. Скамейку починят до пятницы."
    page.get_by_label("Текст ответа").fill(reply)
    expect(page.locator("#readability")).to_contain_text("Читается легко", timeout=10_000)
    page.get_by_role("button", name="Отправить", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Ответ поставлен в очередь")
    outgoing = page.locator(".msg.out", has_text="Скамейку починят")
    expect(outgoing.locator(".delivery")).to_have_text("в очереди")

    sent: list[str] = []
    deliver(rt, sent)
    assert sent == [reply]
    page.reload()
    expect(outgoing.locator(".delivery")).to_have_text("доставлено")
    expect(page.locator("#status")).to_have_text("Отвечено")
    with rt.factory() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None and conversation.status == "answered"
        out = session.exec(select(Message).where(Message.conversation_id == cid,
                                                 Message.direction == "out")).one()  # fmt: skip
    assert out.delivery_status == "sent" and out.external_id == "tg-1"


def test_supervisor_sees_a_breach_on_the_dashboard_after_the_deadline(
    page: Page,
    base_url: str,
    rt: Runtime,
    clock: FrozenClock,
) -> None:
    cid = ingest_appeal(rt, "Нет отопления в школе №3", update_id=990200)
    with rt.factory() as session:
        number = session.get(Conversation, cid).number  # type: ignore[union-attr]
    assert number
    log_in(page, base_url, "svetlana", "supervisor-demo")
    page.goto(f"{base_url}/ui/dashboard?days=1")
    expect(page.locator("#breaches")).not_to_contain_text(number)

    clock.advance(timedelta(hours=2, minutes=10))
    run_sla_scan(rt)
    page.goto(f"{base_url}/ui/dashboard?days=1")
    breach = page.locator("#breaches tr", has_text=number)
    expect(breach).to_contain_text("ещё нет")
    expect(breach.locator(".late")).to_have_text("10 мин")

    page.goto(f"{base_url}/ui/inbox")
    expect(page.locator("#queue tr", has_text=number).locator(".countdown")).to_have_class(
        "countdown breached"
    )


def test_a_script_in_a_citizen_message_is_shown_not_run(
    page: Page,
    base_url: str,
    rt: Runtime,
) -> None:
    ingest_appeal(rt, "<script>window.__pwned = 1</script><b>жирный</b>", update_id=990300)
    log_in(page, base_url, "anna", "operator-demo")
    expect(page.locator("#queue")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#queue b").count() == 0


def test_logout_ends_the_session(page: Page, base_url: str) -> None:
    log_in(page, base_url, "anna", "operator-demo")
    page.get_by_role("button", name="Выйти").click()
    expect(page).to_have_url(f"{base_url}/ui/login")
    page.goto(f"{base_url}/ui/inbox")
    expect(page).to_have_url(f"{base_url}/ui/login")


def test_public_ratings_page_is_open_to_everyone(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/public/ratings")
    expect(page.get_by_role("heading", level=1)).to_have_text("Как жители оценивают наши ответы")
    expect(page).to_have_url(f"{base_url}/public/ratings")
