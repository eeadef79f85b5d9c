"""Issue #9, item 4: the web chat cannot flood the operators' queue.

500 cookie-less POSTs from one address in 15 s used to open 130 appeals. New conversations
now count against sliding-hour quotas per client address (an IPv6 /64) and per chat session,
kept in the database (shared by every process, taken atomically); over a quota the chat
answers 429 with ``Retry-After`` and a Russian text. Messages in an open conversation are
never refused by it. (``inbox.quota`` is imported inside the tests that use it directly,
so that on a version without it the HTTP tests still run and fail on their own.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import func, select

from core.clock import FrozenClock
from core.config import Settings
from inbox import workflow
from inbox.models import Conversation
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot

OFFICE = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


def chat_runtime(db_url: str, clock: FrozenClock, tmp_path: Path, **limits: int) -> Runtime:
    settings = Settings(
        database_url=db_url, data_dir=tmp_path, secret_key="test-secret",
        rate_limit_public_burst=10_000,  # the in-memory per-address limit must not answer first
        **limits,  # type: ignore[arg-type]
    )  # fmt: skip
    return build_runtime(settings, clock=clock)


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = chat_runtime(
        db_url, clock, tmp_path,
        webchat_new_conversations_per_address_per_hour=5,
        webchat_new_conversations_per_session_per_hour=2,
    )  # fmt: skip
    yield runtime
    runtime.dispose()


def chat_app(runtime: Runtime, clock: FrozenClock) -> FastAPI:
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)
    return app


def conversations(runtime: Runtime) -> int:
    with runtime.factory() as session:
        return int(session.exec(select(func.count()).select_from(Conversation)).one())


def post(client: TestClient, text: str = "Во дворе не вывозят мусор") -> httpx.Response:
    return client.post("/api/chat/messages", json={"text": text})


def close_all(runtime: Runtime, clock: FrozenClock) -> None:
    with runtime.factory() as session:
        for conversation in session.exec(select(Conversation)).all():
            if conversation.status != "closed":
                workflow.close(session, conversation, clock.now())
        session.commit()


def test_a_cookieless_flood_from_one_address_opens_only_its_quota(
    rt: Runtime, clock: FrozenClock
) -> None:
    app = chat_app(rt, clock)
    answers = []
    for number in range(40):
        with TestClient(app, client=(OFFICE, 40000 + number)) as flooder:  # no cookie each time
            answers.append(post(flooder, f"спам {number}"))
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 35
    assert conversations(rt) == 5
    refused = answers[-1]
    assert refused.json()["detail"].startswith(
        "С вашего адреса за последний час открыто слишком много новых обращений"
    )
    assert 1 <= int(refused.headers["retry-after"]) <= 2 * 3600  # the sliding hour: < 2 h
    assert (
        f"через {(int(refused.headers['retry-after']) + 59) // 60} мин" in refused.json()["detail"]
    )
    with TestClient(app, client=(ELSEWHERE, 40000)) as neighbour:  # another address is not hit
        assert post(neighbour).status_code == 200
    assert conversations(rt) == 6


def test_messages_in_an_open_conversation_and_rating_presses_are_never_refused(
    rt: Runtime, clock: FrozenClock
) -> None:
    app = chat_app(rt, clock)
    citizens = [TestClient(app, client=(OFFICE, 41000 + n)) for n in range(5)]
    for citizen in citizens:
        citizen.get("/chat")
        assert post(citizen).status_code == 200
    with TestClient(app, client=(OFFICE, 41999)) as late:
        assert post(late).status_code == 429  # the address's quota is used up...
        pressed = late.post("/api/chat/messages", json={"button": "rate:1:5", "label": "5"})
        assert pressed.status_code == 200  # ...a rating press opens nothing: not counted
    for _ in range(10):  # ...but those already talking go on
        for citizen in citizens:
            assert post(citizen, "И ещё вопрос").status_code == 200
    assert conversations(rt) == 5
    for citizen in citizens:
        citizen.close()


def test_one_session_opens_at_most_its_quota_even_from_many_addresses(
    rt: Runtime, clock: FrozenClock
) -> None:
    app = chat_app(rt, clock)
    cookie = ""
    answers = []
    for number in range(4):  # the session's conversation is closed each time: a new one opens
        with TestClient(app, client=(f"192.0.2.{number + 1}", 42000)) as client:
            if cookie:
                client.cookies.set("otklik_chat", cookie)
            answers.append(post(client, f"Вопрос {number}"))
            cookie = cookie or client.cookies["otklik_chat"]
        close_all(rt, clock)
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert answers[-1].json()["detail"].startswith("В этом чате за последний час")
    assert conversations(rt) == 2


def test_the_quota_slides_back_within_the_hour_after_the_flood_stops(
    rt: Runtime, clock: FrozenClock
) -> None:
    app = chat_app(rt, clock)

    def attempt() -> httpx.Response:
        with TestClient(app, client=(OFFICE, 43000)) as client:
            return post(client)

    assert [attempt().status_code for _ in range(8)] == [200] * 5 + [429] * 3
    wait = int(attempt().headers["retry-after"])
    clock.advance(timedelta(seconds=wait - 60))
    assert attempt().status_code == 429  # refused tries did not push the time back
    clock.advance(timedelta(seconds=60))
    assert attempt().status_code == 200
    clock.advance(timedelta(hours=2))
    assert [attempt().status_code for _ in range(6)] == [200] * 5 + [429]


def test_the_turn_of_the_clock_hour_does_not_refill_the_quota(db_url: str, tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 9, 59, 30, tzinfo=UTC))
    runtime = chat_runtime(
        db_url, clock, tmp_path, webchat_new_conversations_per_address_per_hour=5
    )
    try:
        app = chat_app(runtime, clock)
        for _ in range(5):
            with TestClient(app, client=(OFFICE, 44000)) as client:
                assert post(client).status_code == 200
        clock.advance(timedelta(minutes=1))  # 10:00:30, a new clock hour
        with TestClient(app, client=(OFFICE, 44000)) as client:
            assert post(client).status_code == 429
    finally:
        runtime.dispose()


def test_an_ipv6_client_is_counted_per_64_network(rt: Runtime, clock: FrozenClock) -> None:
    from inbox import quota

    assert quota.address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert quota.address_key("::ffff:203.0.113.7") == OFFICE
    assert quota.address_key("testclient") == "testclient"
    app = chat_app(rt, clock)
    codes = []
    for number in range(7):
        with TestClient(app, client=(f"2001:db8:1:2::{number + 1:x}", 45000)) as client:
            codes.append(post(client).status_code)
    assert codes == [200] * 5 + [429] * 2


def test_the_counters_are_shared_by_processes_and_taken_atomically(
    db_url: str, rt: Runtime, clock: FrozenClock, tmp_path: Path
) -> None:
    from inbox import quota
    from inbox.models import QuotaCounter

    """Threads over two runtimes (two engines: two web processes) take one quota at once."""
    others = [chat_runtime(db_url, clock, tmp_path) for _ in range(2)]
    limit = quota.Quota("webchat-address", 7)
    start = threading.Barrier(24)
    verdicts: list[quota.Refused | None] = []
    lock = threading.Lock()

    def take(runtime: Runtime) -> None:
        start.wait()
        verdict = quota.take(runtime.factory, [(limit, OFFICE)], clock.now())
        with lock:
            verdicts.append(verdict)

    try:
        threads = [threading.Thread(target=take, args=(others[n % 2],)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for other in others:
            other.dispose()
    assert sum(v is None for v in verdicts) == 7
    assert all(v.retry_after >= 1 for v in verdicts if v is not None)
    with rt.factory() as session:
        [row] = session.exec(select(QuotaCounter)).all()
    assert (row.scope, row.key, row.count) == ("webchat-address", OFFICE, 7)


def test_a_refusal_by_one_quota_uses_none_of_the_other(rt: Runtime, clock: FrozenClock) -> None:
    from inbox import quota
    from inbox.models import QuotaCounter

    by_session = quota.Quota("webchat-session", 100)
    by_address = quota.Quota("webchat-address", 1)
    charges = [(by_session, "s1"), (by_address, OFFICE)]
    assert quota.take(rt.factory, charges, clock.now()) is None
    refused = quota.take(rt.factory, charges, clock.now())
    assert refused is not None and refused.quota == by_address
    with rt.factory() as session:
        counts = {r.scope: r.count for r in session.exec(select(QuotaCounter)).all()}
    assert counts == {"webchat-session": 1, "webchat-address": 1}


def test_old_hours_are_forgotten(rt: Runtime, clock: FrozenClock) -> None:
    from inbox import quota
    from inbox.models import QuotaCounter

    limit = quota.Quota("webchat-address", 3)
    for hours in range(5):
        assert quota.take(rt.factory, [(limit, f"10.0.0.{hours}")], clock.now()) is None
        clock.advance(timedelta(hours=1))
    assert quota.take(rt.factory, [(limit, "10.0.0.99")], clock.now()) is None
    with rt.factory() as session:
        hours = sorted(r.slot for r in session.exec(select(QuotaCounter)).all())
    assert len(hours) == 2 and hours[1] - hours[0] == 1


def test_retry_after_is_when_the_sliding_hour_has_room_again() -> None:
    from inbox import quota

    assert quota.retry_after(5, previous=0, current=5, elapsed=0.5) == pytest.approx(0.7)
    assert quota.retry_after(5, previous=10, current=0, elapsed=0.0) == pytest.approx(0.6)
    # one use of a quota of 1: the next window weighs it down to nothing only at its end
    assert quota.retry_after(1, previous=0, current=1, elapsed=0.25) == pytest.approx(1.75)


def test_worker_mode_counts_a_session_once_while_its_first_message_waits(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    runtime = chat_runtime(
        db_url, clock, tmp_path, webchat_new_conversations_per_address_per_hour=2
    )
    runtime.settings.processing = "worker"
    try:
        app = chat_app(runtime, clock)
        with TestClient(app, client=(OFFICE, 46000)) as citizen:
            citizen.get("/chat")
            for text in ("Здравствуйте", "Во дворе не вывозят мусор", "Дом 5"):
                assert post(citizen, text).status_code == 200  # journalled, not processed yet
        with TestClient(app, client=(OFFICE, 46001)) as other:
            assert post(other).status_code == 200
        with TestClient(app, client=(OFFICE, 46002)) as third:
            assert post(third).status_code == 429
    finally:
        runtime.dispose()


def test_a_burst_opens_at_most_the_per_minute_quota_with_the_defaults(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    """The defaults (60 an hour, 10 a minute per address): a flood's first seconds open 10."""
    runtime = chat_runtime(db_url, clock, tmp_path)
    try:
        app = chat_app(runtime, clock)

        def attempt(number: int) -> httpx.Response:
            with TestClient(app, client=(OFFICE, 47000 + number)) as client:
                return post(client, f"Вопрос {number}")

        answers = [attempt(n) for n in range(14)]
        assert [a.status_code for a in answers] == [200] * 10 + [429] * 4
        assert (
            answers[-1]
            .json()["detail"]
            .startswith("С вашего адреса сейчас открывают слишком много новых обращений")
        )
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 120
        clock.advance(timedelta(minutes=2))
        assert attempt(99).status_code == 200
        assert conversations(runtime) == 11
    finally:
        runtime.dispose()


def test_a_refused_flood_is_answered_without_the_database_until_retry_after(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inbox import quota

    app = chat_app(rt, clock)
    for number in range(6):
        with TestClient(app, client=(OFFICE, 48000 + number)) as client:
            post(client)
    calls: list[int] = []
    take = quota.take

    def counting(*args: object, **kwargs: object) -> quota.Refused | None:
        calls.append(1)
        return take(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(quota, "take", counting)
    for number in range(5):
        with TestClient(app, client=(OFFICE, 48100 + number)) as client:
            assert post(client).status_code == 429
    assert calls == []  # remembered: no quota query
    wait = 0
    with TestClient(app, client=(OFFICE, 48200)) as client:
        wait = int(post(client).headers["retry-after"])
    clock.advance(timedelta(seconds=wait))
    with TestClient(app, client=(OFFICE, 48201)) as client:
        assert post(client).status_code == 200
    assert calls == [1]


def test_after_a_remembered_refusal_ends_one_request_at_a_time_asks_the_database(
    clock: FrozenClock,
) -> None:
    from inbox import quota

    recent = quota.RecentRefusals(hold=timedelta(seconds=5))
    per_hour = quota.Quota("webchat-address", 5)
    charges = [(per_hour, OFFICE)]
    assert recent.check(charges, clock.now()) is None  # nothing known: ask
    recent.done(charges, quota.Refused(per_hour, 2), clock.now())
    held = recent.check(charges, clock.now())
    assert held is not None and held.retry_after == 5  # held at least 5 s
    clock.advance(timedelta(seconds=5))
    assert recent.check(charges, clock.now()) is None  # this one asks...
    waiting = recent.check(charges, clock.now())
    assert waiting is not None and waiting.retry_after == 1  # ...the others wait a second
    recent.done(charges, None, clock.now())  # allowed
    assert recent.check(charges, clock.now()) is None
    assert recent.check([(per_hour, ELSEWHERE)], clock.now()) is None  # other keys unaffected
