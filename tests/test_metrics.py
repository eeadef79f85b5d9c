"""Supervisor metrics, on SQLite and PostgreSQL, with time moved by a frozen clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.normalize import normalize
from core.clock import FrozenClock
from core.events import Channel
from inbox import metrics, workflow
from inbox.models import Conversation, Operator, Rating
from inbox.runtime import Runtime
from inbox.scheduler import run_sla_scan
from otklik.demo import _tg_group_mention, _tg_private

_ids = iter(range(700_000, 800_000))


def appeal(rt: Runtime, at: datetime, text: str = "Не вывозят мусор во дворе") -> int:
    """A Telegram private message (an appeal, due in 2 hours) published at ``at``."""
    n = next(_ids)
    raw = json.dumps(_tg_private(n, 100_000 + n, "Жанна", text, at), ensure_ascii=False)
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id


def mention(rt: Runtime, at: datetime) -> int:
    n = next(_ids)
    raw = json.dumps(_tg_group_mention(n, 100_000 + n, "@dgh_city почините фонарь", at))
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id


def answer(rt: Runtime, conversation_id: int, at: datetime, operator: Operator | None = None):
    with rt.factory() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        workflow.reply(session, conversation, "Ответ", at, operator=operator)
        session.commit()


def add_operator(session: Session, login: str) -> Operator:
    operator = Operator(login=login, display_name=login.title())
    session.add(operator)
    session.commit()
    return operator


def test_share_within_deadline_is_counted_per_channel_and_kind(
    runtime: Runtime, clock: FrozenClock
) -> None:
    t0 = clock.now()
    on_time, late, unanswered = appeal(runtime, t0), appeal(runtime, t0), appeal(runtime, t0)
    mention(runtime, t0)  # due in 4 hours: not yet counted either way
    answer(runtime, on_time, t0 + timedelta(minutes=30))
    answer(runtime, late, t0 + timedelta(hours=2, minutes=10))
    clock.advance(timedelta(hours=3))
    run_sla_scan(runtime)
    with runtime.factory() as session:
        shares_now = metrics.deadline_shares(
            session, metrics.Period.last_days(clock.now(), 1), clock.now()
        )
    # the mention (4 hours) is neither met nor breached yet, so it is not counted
    assert [(s.channel, s.kind, s.met, s.late, s.overdue) for s in shares_now] == [
        ("telegram", "appeal", 1, 1, 1)
    ]
    assert shares_now[0].share == 1 / 3
    assert metrics.total_share(shares_now).total == 3
    assert unanswered


def test_breaches_list_late_and_unanswered_items_with_how_late(
    runtime: Runtime, clock: FrozenClock
) -> None:
    t0 = clock.now()
    late, unanswered = appeal(runtime, t0), appeal(runtime, t0 + timedelta(minutes=5))
    answer(runtime, late, t0 + timedelta(hours=2, minutes=15))
    clock.advance(timedelta(hours=3))
    with runtime.factory() as session:
        found = metrics.breaches(session, metrics.Period.last_days(clock.now(), 1), clock.now())
    by_id = {b.conversation_id: b for b in found}
    assert set(by_id) == {late, unanswered}
    assert by_id[late].late_by == timedelta(minutes=15)
    assert by_id[unanswered].answered_at is None
    assert by_id[unanswered].late_by == timedelta(minutes=55)
    assert found[0].conversation_id == unanswered  # latest deadline first


def test_median_and_90th_percentile_of_time_to_first_response(
    runtime: Runtime, clock: FrozenClock
) -> None:
    t0 = clock.now()
    for minutes in (10, 20, 30, 40, 150):
        answer(runtime, appeal(runtime, t0), t0 + timedelta(minutes=minutes))
    appeal(runtime, t0)  # not answered: no response time
    clock.advance(timedelta(hours=3))
    with runtime.factory() as session:
        times = metrics.response_times(session, metrics.Period.last_days(clock.now(), 1))
    assert times.count == 5
    assert times.median == timedelta(minutes=30)
    assert times.p90 == timedelta(minutes=150)
    histogram = dict(times.histogram)
    assert histogram["0 мин–15 мин"] == 1
    assert histogram["15 мин–30 мин"] == 1
    assert histogram["30 мин–1 ч"] == 2
    assert histogram["2 ч–4 ч"] == 1
    assert sum(histogram.values()) == 5


def test_operator_load_counts_open_assigned_conversations_only(
    runtime: Runtime, clock: FrozenClock
) -> None:
    t0 = clock.now()
    ids = [appeal(runtime, t0) for _ in range(3)]
    with runtime.factory() as session:
        anna, ivan = add_operator(session, "anna"), add_operator(session, "ivan")
        off = add_operator(session, "retired")
        off.active = False
        for cid, who in zip(ids, (anna, anna, ivan), strict=True):
            workflow.assign(session, session.get(Conversation, cid), who, t0)  # type: ignore[arg-type]
        workflow.close(session, session.get(Conversation, ids[1]), t0)  # type: ignore[arg-type]
        session.commit()
        load = {row.login: row.open_assigned for row in metrics.operator_load(session)}
    assert load == {"anna": 1, "ivan": 1}


def test_csat_distribution_and_low_rated_knowledge_base_answers(
    runtime: Runtime, clock: FrozenClock
) -> None:
    cid = appeal(runtime, clock.now())
    scores = [("garbage-bulky", 1), ("garbage-bulky", 2), ("garbage-bulky", 4),
              ("garbage-not-collected", 5), ("garbage-not-collected", 4), (None, 3)]  # fmt: skip
    with runtime.factory() as session:
        for entry, score in scores:
            session.add(Rating(conversation_id=cid, score=score, kb_entry_id=entry,
                               rated_at=clock.now()))  # fmt: skip
        session.commit()
        summary = metrics.ratings(session, metrics.Period.last_days(clock.now() + timedelta(1), 2))
        low = metrics.low_rated_kb_answers(session)
        old = metrics.ratings(session, metrics.Period.last_days(clock.now() - timedelta(days=3), 1))
    assert summary.count == 6
    assert summary.average == 19 / 6
    assert summary.csat == 3 / 6
    assert summary.distribution == {1: 1, 2: 1, 3: 1, 4: 2, 5: 1}
    assert summary.by_channel == {"telegram": (6, 19 / 6)}
    assert [(r.kb_entry_id, r.count, r.low) for r in low] == [("garbage-bulky", 3, 2)]
    assert old.count == 0 and old.average is None


def test_volume_by_hour_uses_the_agency_time_zone(runtime: Runtime, clock: FrozenClock) -> None:
    t0 = clock.now()  # 09:00 UTC = 12:00 in Moscow
    appeal(runtime, t0)
    appeal(runtime, t0 + timedelta(minutes=20))
    appeal(runtime, t0 + timedelta(hours=2))
    with runtime.factory() as session:
        volume = metrics.volume_by_hour(
            session, metrics.Period.last_days(t0 + timedelta(hours=3), 1), "Europe/Moscow"
        )
    assert len(volume) == 24
    assert volume[12] == 2 and volume[14] == 1 and sum(volume) == 3


def test_csv_rows_carry_the_deadline_outcome(runtime: Runtime, clock: FrozenClock) -> None:
    t0 = clock.now()
    answered = appeal(runtime, t0)
    answer(runtime, answered, t0 + timedelta(minutes=45))
    appeal(runtime, t0 + timedelta(minutes=1))
    with runtime.factory() as session:
        rows = metrics.conversation_rows(session, metrics.Period.last_days(t0 + timedelta(1), 2))
        numbers = [c.number for c in session.exec(select(Conversation)).all()]
    assert [r.number for r in rows] == numbers
    assert (rows[0].sla, rows[0].response_minutes) == ("met", 45.0)
    assert (rows[1].sla, rows[1].response_minutes) == ("running", None)


def test_percentile_is_nearest_rank() -> None:
    assert metrics.percentile([], 90) is None
    assert metrics.percentile([5.0], 90) == 5.0
    assert metrics.percentile([float(v) for v in range(1, 11)], 90) == 9.0
    assert metrics.median([1.0, 2.0, 3.0, 10.0]) == 2.5
