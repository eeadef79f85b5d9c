"""The application lifecycle's rules, on SQLite and PostgreSQL: allowed moves, what each move
needs, the history row and the citizen's message in one transaction, idempotency keys, the
overdue rule and the list filters, and the plain Russian of every status message."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from core.clock import FrozenClock
from inbox import applications
from inbox.application_status import MOVES, NEEDS, ApplicationStatus
from inbox.application_texts import (
    CITIZEN_LABELS,
    HistoryItem,
    history_lines,
    notice_buttons,
    status_notice,
)
from inbox.applications import (
    Actor,
    ApplicationError,
    ApplicationFilter,
    ChangeRequest,
    change_status,
    clean_text,
)
from inbox.models import Application, ApplicationStatusChange, AuditEvent, Message
from inbox.runtime import Runtime
from knowledge_base.readability import check_text
from rules.applications import (
    SHIPPED,
    ApplicationRules,
    application_rules,
    load_application_rules,
)
from rules.errors import RulesFileError
from tests.helpers.applications_harness import make_application

ZONE = ZoneInfo("Europe/Moscow")
S = ApplicationStatus
CLI = Actor.cli("tester")


def complete(target: ApplicationStatus) -> ChangeRequest:
    """A request to ``target`` with everything that status needs."""
    needs = NEEDS[target]
    return ChangeRequest(
        status=target.value,
        comment="Пришлите фото фонаря." if needs.comment else None,
        reason="Дорогу будут ремонтировать весной." if needs.reason else None,
    )


def move(rt: Runtime, application_id: int, request: ChangeRequest, **kwargs):  # type: ignore[no-untyped-def]
    with rt.factory() as session:
        outcome = change_status(
            session, application_id, request, kwargs.pop("actor", CLI), rt.clock.now(), ZONE,
            **kwargs,
        )  # fmt: skip
        session.commit()
        return outcome


def rows(rt: Runtime, model):  # type: ignore[no-untyped-def]
    with rt.factory() as session:
        return list(session.exec(select(model).order_by(col(model.id))))


@pytest.mark.parametrize(
    ("current", "target"),
    [(a, b) for a, b in itertools.product(S, S) if b in MOVES[a]],
)
def test_each_allowed_move_is_recorded_with_one_message_to_the_citizen(
    runtime: Runtime, current: ApplicationStatus, target: ApplicationStatus
) -> None:
    app_id, number, conversation_id = make_application(runtime, status=current.value)
    outcome = move(runtime, app_id, complete(target))
    [change] = rows(runtime, ApplicationStatusChange)
    assert (change.from_status, change.to_status) == (current.value, target.value)
    assert (change.actor_kind, change.actor) == ("cli", "tester")
    [message] = rows(runtime, Message)
    assert change.message_id == message.id
    assert message.conversation_id == conversation_id and message.channel == "telegram"
    assert message.idempotency_key == f"application-status-{change.id}"
    assert message.delivery_status == "queued"
    assert message.meta["purpose"] == "application_status"
    assert message.meta["buttons"] == notice_buttons(number, target.value)
    assert number in message.text
    assert outcome.application.status == target.value and outcome.application.version == 2
    [event] = [e for e in rows(runtime, AuditEvent) if e.kind == "application_status_changed"]
    assert event.data["number"] == number and event.conversation_id == conversation_id


@pytest.mark.parametrize(
    ("current", "target"),
    [(a, b) for a, b in itertools.product(S, S) if b not in MOVES[a]],
)
def test_a_move_the_table_does_not_allow_is_refused_and_changes_nothing(
    runtime: Runtime, current: ApplicationStatus, target: ApplicationStatus
) -> None:
    app_id, _, _ = make_application(runtime, status=current.value)
    with pytest.raises(ApplicationError) as refused:
        move(runtime, app_id, complete(target))
    assert refused.value.kind == "conflict"
    assert rows(runtime, ApplicationStatusChange) == [] and rows(runtime, Message) == []
    assert rows(runtime, Application)[0].status == current.value


def test_refusal_needs_why_and_more_information_needs_what(runtime: Runtime) -> None:
    app_id, _, _ = make_application(runtime)
    for request, field in (
        (ChangeRequest("refused"), "reason"),
        (ChangeRequest("refused", reason="   "), "reason"),
        (ChangeRequest("info_needed"), "comment"),
        (ChangeRequest("done", reason="Не нужно"), "reason"),
        (ChangeRequest("done", expected_date=date(2026, 12, 1)), "expected_date"),
        (ChangeRequest("nonsense"), "status"),
    ):
        with pytest.raises(ApplicationError) as refused:
            move(runtime, app_id, request)
        assert refused.value.field == field and refused.value.kind == "invalid"
    assert rows(runtime, ApplicationStatusChange) == []


def test_refused_with_why_not_now_and_when_is_told_to_the_citizen(runtime: Runtime) -> None:
    app_id, number, _ = make_application(runtime)
    move(runtime, app_id, ChangeRequest(
        "refused", comment="Спасибо, что написали.", reason="Фонари меняют весной всем районом.",
        expected_date=date(2027, 5, 15), internal_note="план ремонта 2027, п. 14",
    ))  # fmt: skip
    [message] = rows(runtime, Message)
    assert message.text == (
        f"Заявление {number}: сделать это сейчас нельзя.\n"
        "Почему: Фонари меняют весной всем районом.\n"
        "Когда будет можно: 15.05.2027.\n"
        "Комментарий: Спасибо, что написали."
    )
    assert "план ремонта" not in message.text  # the internal note never reaches the citizen
    assert rows(runtime, Application)[0].expected_date == date(2027, 5, 15)


def test_expected_date_is_not_in_the_past_nor_years_ahead(
    runtime: Runtime, clock: FrozenClock
) -> None:
    app_id, _, _ = make_application(runtime)
    today = clock.now().astimezone(ZONE).date()
    for bad in (today - timedelta(days=1), today + timedelta(days=366 * 6)):
        with pytest.raises(ApplicationError) as refused:
            move(runtime, app_id, ChangeRequest("in_progress", expected_date=bad))
        assert refused.value.field == "expected_date"
    move(runtime, app_id, ChangeRequest("in_progress", expected_date=today))


@pytest.mark.parametrize(
    "text",
    ["a\ud800b", "оплата \u202eвозврат", "звонок\x07", "x\u2066y", "\ufdd0"],
    ids=["lone-surrogate", "right-to-left-override", "bell", "isolate", "noncharacter"],
)
def test_text_a_person_would_not_mean_to_send_is_refused(runtime: Runtime, text: str) -> None:
    app_id, _, _ = make_application(runtime)
    with pytest.raises(ApplicationError) as refused:
        move(runtime, app_id, ChangeRequest("in_progress", comment=text))
    assert refused.value.field == "comment" and "U+" in str(refused.value)
    assert rows(runtime, Message) == []


def test_new_lines_and_tabs_in_a_comment_are_kept_and_edges_stripped() -> None:
    assert (
        clean_text("  Первое.\r\nВторое\tтретье.  ", "comment", 100) == "Первое.\nВторое\tтретье."
    )
    assert clean_text("   ", "comment", 100) is None
    with pytest.raises(ApplicationError):
        clean_text("я" * 101, "comment", 100)


def test_a_change_and_its_message_are_written_together_or_not_at_all(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id, _, _ = make_application(runtime)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the process died between the change and its message")

    monkeypatch.setattr(applications, "_notify", crash)
    with pytest.raises(RuntimeError):
        move(runtime, app_id, ChangeRequest("done"))
    assert rows(runtime, ApplicationStatusChange) == [] and rows(runtime, Message) == []
    assert rows(runtime, Application)[0].status == "submitted"
    monkeypatch.undo()
    move(runtime, app_id, ChangeRequest("done"))
    assert len(rows(runtime, ApplicationStatusChange)) == 1 and len(rows(runtime, Message)) == 1


def test_the_outbox_cannot_hold_a_second_message_for_one_change(runtime: Runtime) -> None:
    app_id, _, conversation_id = make_application(runtime)
    move(runtime, app_id, ChangeRequest("done"))
    [message] = rows(runtime, Message)
    with runtime.factory() as session, pytest.raises(sa.exc.IntegrityError):
        session.add(Message(
            conversation_id=conversation_id, direction="out", author_kind="bot",
            channel="telegram", text="again", published_at=runtime.clock.now(),
            delivery_status="queued", idempotency_key=message.idempotency_key,
        ))  # fmt: skip
        session.commit()


def test_a_stale_version_is_refused(runtime: Runtime) -> None:
    app_id, _, _ = make_application(runtime)
    move(runtime, app_id, ChangeRequest("in_progress"), seen_version=1)
    with pytest.raises(ApplicationError) as refused:
        move(runtime, app_id, ChangeRequest("done"), seen_version=1)
    assert refused.value.kind == "conflict" and refused.value.field == "version"


def test_an_idempotency_key_replays_its_change_and_refuses_another_request(
    runtime: Runtime,
) -> None:
    app_id, _, _ = make_application(runtime)
    from tests.helpers.applications_harness import make_token

    make_token(runtime, "backoffice", "applications:write")
    actor = Actor.api(1, "backoffice")
    first = move(runtime, app_id, ChangeRequest("in_progress"), actor=actor, idempotency_key="k-1")
    again = move(runtime, app_id, ChangeRequest("in_progress"), actor=actor, idempotency_key="k-1")
    assert not first.replayed and again.replayed and again.change.id == first.change.id
    with pytest.raises(ApplicationError) as refused:
        move(runtime, app_id, ChangeRequest("done"), actor=actor, idempotency_key="k-1")
    assert refused.value.kind == "idempotency"
    assert len(rows(runtime, ApplicationStatusChange)) == 1 and len(rows(runtime, Message)) == 1


def test_an_application_without_a_conversation_changes_without_a_message(
    runtime: Runtime,
) -> None:
    app_id, _, _ = make_application(runtime)
    with runtime.factory() as session:
        application = session.get(Application, app_id)
        assert application is not None
        application.conversation_id = None
        session.commit()
    outcome = move(runtime, app_id, ChangeRequest("done"))
    assert outcome.change.message_id is None and rows(runtime, Message) == []


def test_overdue_by_the_rules_days_and_by_the_date_given(
    runtime: Runtime, clock: FrozenClock
) -> None:
    rules = ApplicationRules(answer_within_days=30, services={"garbage": 3})
    start = clock.now()
    old_garbage, _, _ = make_application(
        runtime, service="garbage", created_at=start - timedelta(days=4)
    )
    new_garbage, _, _ = make_application(
        runtime, service="garbage", created_at=start - timedelta(days=2)
    )
    old_light, _, _ = make_application(runtime, created_at=start - timedelta(days=31))
    young_light, _, _ = make_application(runtime, created_at=start - timedelta(days=29))
    waiting, _, _ = make_application(
        runtime, created_at=start - timedelta(days=40), status="info_needed"
    )
    done, _, _ = make_application(runtime, created_at=start - timedelta(days=40), status="done")
    promised, _, _ = make_application(runtime, created_at=start - timedelta(days=1))
    move(
        runtime, promised, ChangeRequest("in_progress", expected_date=start.astimezone(ZONE).date())
    )
    clock.advance(timedelta(days=1))  # the promised day is over
    now = clock.now()
    with runtime.factory() as session:
        found, total = applications.search(
            session, ApplicationFilter(overdue=True), now, ZONE, rules
        )
    listed = {r.application.id for r in found}
    today = applications.today_in(ZONE, now)
    for r in rows(runtime, Application):  # the SQL and the Python rule agree
        assert applications.is_overdue(r, now, today, rules) == (r.id in listed), r.id
    assert listed == {old_garbage, old_light, promised} and total == 3
    assert {new_garbage, young_light, waiting, done}.isdisjoint(listed)


def test_list_filters_by_status_service_channel_dates_and_pages(
    runtime: Runtime, clock: FrozenClock
) -> None:
    # 23.11 00:30 in Moscow is still 22.11 in UTC: the day is the agency's.
    early = datetime(2026, 11, 22, 21, 30, tzinfo=UTC)
    a, _, _ = make_application(runtime, created_at=early)
    b, _, _ = make_application(
        runtime, channel="vk", thread_key="vk:1", service="garbage", title="Вывоз мусора",
        created_at=early - timedelta(hours=1),
    )  # fmt: skip
    c, _, _ = make_application(runtime, channel="webchat", thread_key="web:x", status="done")
    rules = ApplicationRules()
    now = clock.now()

    def ids(**kwargs: object) -> list[int]:
        with runtime.factory() as session:
            found, _ = applications.search(session, ApplicationFilter(**kwargs), now, ZONE, rules)  # type: ignore[arg-type]
        return [r.application.id for r in found]  # type: ignore[misc]

    assert ids() == [c, b, a]
    assert ids(statuses=["done"]) == [c]
    assert ids(service="garbage") == [b]
    assert ids(channel="vk") == [b]
    assert ids(created_from=date(2026, 11, 23)) == [c, a]
    assert ids(created_to=date(2026, 11, 22)) == [b]
    with runtime.factory() as session:
        page, total = applications.search(
            session, ApplicationFilter(), now, ZONE, rules, limit=2, offset=2
        )
        assert [r.application.id for r in page] == [a] and total == 3
        assert applications.services(session) == {
            "lighting": "Уличное освещение",
            "garbage": "Вывоз мусора",
        }


def test_numbers_are_read_loosely_and_refused_when_they_are_not_numbers() -> None:
    assert applications.normalize_number("Z-2026-42") == "З-2026-000042"
    assert applications.normalize_number(" з 2026 000042 ") == "З-2026-000042"
    assert applications.normalize_number("З-2026-1000000") == "З-2026-1000000"  # past a million
    for bad in ("З-2026-9999999999", "2026-000042", "З-20-1", "З-2026-1" + "0" * 100, ""):
        assert applications.normalize_number(bad) is None


def _every_notice() -> list[tuple[str, str]]:
    number, when = "З-2026-000042", date(2027, 5, 15)
    found = []
    for previous, target in itertools.product(S, S):
        if target not in MOVES[previous]:
            continue
        for comment, expected in ((None, None), ("Бригада приедет в среду.", when)):
            needs = NEEDS[target]
            text = status_notice(
                number, previous, target,
                comment=comment or ("Пришлите фото фонаря." if needs.comment else None),
                reason="Ремонт будет весной." if needs.reason else None,
                expected_date=expected if needs.expected_date else None,
            )  # fmt: skip
            found.append((f"{previous}->{target}{'+' if comment else ''}", text))
    return found


@pytest.mark.parametrize(("name", "text"), _every_notice())
def test_every_status_message_passes_the_readability_check(name: str, text: str) -> None:
    report = check_text(text)
    assert report.ok, f"{name}: {report.failures}\n{text}"


def test_bot_history_shows_the_newest_changes_with_cut_texts() -> None:
    at = datetime(2026, 11, 24, 9, tzinfo=UTC)
    items = [
        HistoryItem(at + timedelta(days=i), "in_progress", comment=f"Шаг {i}.") for i in range(6)
    ]
    items.append(HistoryItem(at + timedelta(days=7), "refused", reason="я" * 500, comment=None))
    lines = history_lines(date(2026, 11, 23), items, lambda m: m.date())
    assert lines[0] == "История:" and len(lines) == 1 + 5  # the submission line is dropped
    assert lines[-1].startswith("01.12.2026 — отказано. Почему: " + "я" * 200)
    assert "…" in lines[-1] and lines[-1].endswith("Срок пока назвать не можем.")
    assert CITIZEN_LABELS["info_needed"] == "нужны сведения от вас"


def test_application_rules_file_is_checked_and_a_missing_one_means_the_shipped(
    tmp_path: Path,
) -> None:
    assert application_rules(tmp_path) == load_application_rules(SHIPPED)
    (tmp_path / "applications.yaml").write_text("answer_within_days: 0\n", encoding="utf-8")
    with pytest.raises(RulesFileError) as error:
        application_rules(tmp_path)
    assert "applications.yaml" in str(error.value) and "answer_within_days" in str(error.value)
    (tmp_path / "applications.yaml").write_text("services: {garbage: 2}\n", encoding="utf-8")
    assert application_rules(tmp_path).days_for("garbage") == 2
    assert application_rules(tmp_path).days_for("roads") == 30
