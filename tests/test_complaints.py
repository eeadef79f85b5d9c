"""Shared complaints in the inbox: merging appeals, one clock, one answer to every supporter
once, matching a new application by place and topic (issue #10, part 4)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from inbox import complaints
from inbox.application_status import MOVES, ApplicationStatus
from inbox.applications import Actor
from inbox.complaint_texts import (
    JOIN_ALREADY,
    JOIN_CLOSED,
    JOIN_DONE,
    JOINED,
    OFFER,
    status_notice,
)
from inbox.complaints import ComplaintChange, ComplaintError
from inbox.models import (
    ComplaintStatusChange,
    ComplaintSupporter,
    Message,
    SharedComplaint,
    SlaClock,
)
from inbox.places import place_key
from inbox.runtime import Runtime
from knowledge_base.readability import check_text
from tests.helpers.complaints_harness import ZONE, make_appeal, make_complaint

S = ApplicationStatus
CLI = Actor.cli("test")


def change(rt: Runtime, complaint_id: int, request: ComplaintChange) -> list[int]:
    with rt.factory() as session:
        outcome = complaints.change_status(
            session, complaint_id, request, CLI, rt.clock.now(), ZONE
        )
        session.commit()
        return outcome.notified


def messages(rt: Runtime, conversation_id: int) -> list[Message]:
    with rt.factory() as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(col(Message.id))
            )
        )


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("ул. Ленина, д. 5", "ленина 5"),
        ("Ленина 5", "ленина 5"),
        ("улица Ленина, дом 5", "ленина 5"),
        ("г. Энск, ул. Ленина, 5, кв. 12", "ленина 5"),
        ("ЛЕНИНА  5 подъезд 2", "ленина 5"),
        ("пр-т Мира 12а", "мира 12а"),
        ("проспект Мира, 12 А", "мира 12а"),
        ("ул. Пролётная 3", "пролетная 3"),
        ("Ленина", "ленина"),
        ("ул. Ленина, д. 7", "ленина 7"),
        ("!!! ,,, ", ""),
    ],
)
def test_one_address_written_many_ways_is_one_place(typed: str, key: str) -> None:
    assert place_key(typed) == key


def test_odd_unicode_and_huge_addresses_give_a_bounded_key() -> None:
    assert place_key("Ｌｅｎｉｎａ ５") == "lenina 5"  # full-width forms folded
    assert place_key("\u202eЛенина\u202c 5") == "ленина 5"
    assert len(place_key("Ленина " * 10_000)) <= 300


def test_merging_appeals_keeps_one_clock_and_tells_each_citizen_once(runtime: Runtime) -> None:
    first, second, third = (make_appeal(runtime, n) for n in (1, 2, 3))
    complaint_id = make_complaint(runtime, [first, second, third])
    with runtime.factory() as session:
        clocks = session.exec(select(SlaClock).order_by(col(SlaClock.id))).all()
        complaint = session.get(SharedComplaint, complaint_id)
        assert complaint is not None and complaint.conversation_id == first
        assert [(c.conversation_id, c.status) for c in clocks] == [
            (first, "running"), (second, "cancelled"), (third, "cancelled"),
        ]  # fmt: skip
        assert complaints.supporters_count(session, complaint_id) == 3
    for conversation_id in (first, second, third):
        sent = messages(runtime, conversation_id)
        assert len(sent) == 1
        assert "Её поддерживают жителей: " in sent[0].text
        assert f"/public/complaints/{complaint.slug}" in sent[0].text
        assert sent[0].meta["purpose"] == "complaint_status"


def test_a_citizen_supports_a_complaint_once(runtime: Runtime) -> None:
    first = make_appeal(runtime, 1)
    complaint_id = make_complaint(runtime, [first])
    with runtime.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        conversation = session.get(complaints.Conversation, first)
        assert complaint is not None and conversation is not None
        assert complaints.join(session, complaint, conversation, "bot", runtime.clock.now()) is None
        session.commit()
        assert complaints.supporters_count(session, complaint_id) == 1
        session.add(
            ComplaintSupporter(
                complaint_id=complaint_id, citizen_id=conversation.citizen_id,
                conversation_id=first, joined_at=runtime.clock.now(), via="bot",
            )
        )  # fmt: skip
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()


def test_one_answer_goes_to_every_supporter_once_and_meets_the_one_clock(
    runtime: Runtime,
) -> None:
    appeals = [make_appeal(runtime, n) for n in range(1, 6)]
    complaint_id = make_complaint(runtime, appeals)
    notified = change(
        runtime, complaint_id,
        ComplaintChange("in_progress", answer="Бригада заменит лампы.",
                        expected_date=date(2026, 12, 1), internal_note="подрядчик Свет"),
    )  # fmt: skip
    assert len(notified) == 5
    for conversation_id in appeals:
        news = [m for m in messages(runtime, conversation_id) if "status_change_id" in m.meta]
        assert len(news) == 1
        assert "взяли в работу" in news[0].text and "до 01.12.2026" in news[0].text
        assert "Бригада заменит лампы." in news[0].text and "подрядчик" not in news[0].text
    with runtime.factory() as session:
        lead = session.exec(select(SlaClock).where(SlaClock.conversation_id == appeals[0])).one()
        assert lead.status == "met"
        keys = session.exec(
            select(Message.idempotency_key).where(col(Message.idempotency_key).like("complaint-%"))
        ).all()
        assert len(keys) == len(set(keys)) == 10  # 5 «joined» + 5 status notices
        row = session.exec(select(ComplaintStatusChange)).one()
        assert row.notified == 5 and row.internal_note == "подрядчик Свет"
        # The same notice for the same supporter cannot be queued a second time.
        duplicate = Message(
            conversation_id=appeals[0], direction="out", author_kind="bot", channel="telegram",
            published_at=runtime.clock.now(), idempotency_key=f"complaint-{row.id}-1",
        )  # fmt: skip
        session.add(duplicate)
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()


def test_refusal_needs_why_and_a_move_the_lifecycle_forbids_changes_nothing(
    runtime: Runtime,
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    with pytest.raises(ComplaintError, match="почему сейчас нельзя"):
        change(runtime, complaint_id, ComplaintChange("refused"))
    change(runtime, complaint_id, ComplaintChange("done", answer="Лампы заменили."))
    with pytest.raises(ComplaintError) as refused:
        change(runtime, complaint_id, ComplaintChange("info_needed", answer="Фото?"))
    assert refused.value.kind == "conflict"
    with pytest.raises(ComplaintError, match="прошёл"):
        change(
            runtime, complaint_id,
            ComplaintChange("in_progress", expected_date=runtime.clock.now().date() - timedelta(1)),
        )  # fmt: skip
    with runtime.factory() as session:
        assert len(complaints.history(session, complaint_id)) == 1


def test_a_new_application_matches_an_open_complaint_of_its_place_and_topic_only(
    runtime: Runtime,
) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)], place="ул. Ленина, д. 5")
    with runtime.factory() as session:
        found = complaints.find_match(session, "lighting", "Ленина 5, подъезд 3")
        assert found is not None and found.id == complaint_id
        assert complaints.find_match(session, "roads", "ул. Ленина, д. 5") is None
        assert complaints.find_match(session, "lighting", "ул. Ленина, д. 15") is None
        assert complaints.find_match(session, "lighting", "ул. Ленина") is None
        assert complaints.find_match(session, "lighting", "") is None
        assert complaints.find_match(session, "LIGHTING'--", "ул. Ленина, д. 5") is None
    change(runtime, complaint_id, ComplaintChange("done"))
    with runtime.factory() as session:
        assert complaints.find_match(session, "lighting", "ул. Ленина, д. 5") is None


def test_nobody_joins_a_closed_complaint(runtime: Runtime) -> None:
    complaint_id = make_complaint(runtime, [make_appeal(runtime, 1)])
    change(runtime, complaint_id, ComplaintChange("done"))
    late = make_appeal(runtime, 2)
    with runtime.factory() as session:
        complaint = session.get(SharedComplaint, complaint_id)
        conversation = session.get(complaints.Conversation, late)
        assert complaint is not None and conversation is not None
        with pytest.raises(ComplaintError, match="закрыта"):
            complaints.join(session, complaint, conversation, "bot", runtime.clock.now())


def test_creating_refuses_empty_fields_unknown_appeals_and_odd_topics(runtime: Runtime) -> None:
    appeal = make_appeal(runtime, 1)
    for kwargs, what in (
        ({"title": "  "}, "title"),
        ({"place": "!!!"}, "place"),
        ({"topic": "Освещение"}, "topic"),
        ({"title": "Фонарь\u202e"}, "title"),
    ):
        with pytest.raises(ComplaintError) as refused:
            make_complaint(runtime, [appeal], **kwargs)
        assert refused.value.field == what
    with pytest.raises(ComplaintError) as missing:
        make_complaint(runtime, [appeal, 10**9])
    assert missing.value.kind == "not_found"
    with runtime.factory() as session:
        assert session.exec(select(SharedComplaint)).all() == []


def test_slugs_are_random_and_only_well_formed_ones_are_looked_up(runtime: Runtime) -> None:
    ids = [make_complaint(runtime, [make_appeal(runtime, n)]) for n in (1, 2)]
    with runtime.factory() as session:
        slugs = [session.get(SharedComplaint, i).slug for i in ids]  # type: ignore[union-attr]
        assert slugs[0] != slugs[1] and all(complaints.SLUG.fullmatch(s) for s in slugs)
        assert complaints.by_slug(session, slugs[0]).id == ids[0]  # type: ignore[union-attr]
        for bad in (str(ids[0]), slugs[0][:-1], slugs[0] + "A", "' OR 1=1 --" + "x" * 11, ""):
            assert complaints.by_slug(session, bad) is None


def _every_text() -> list[tuple[str, str]]:
    found = [
        ("offer", OFFER.format(title="Не горят фонари", place="Ленина 5", count=3,
                               status="в работе")),
        ("plus one", JOIN_DONE.format(title="Не горят фонари", count=4)),
        ("already", JOIN_ALREADY.format(title="Не горят фонари")),
        ("closed", JOIN_CLOSED),
        ("merged", JOINED.format(number="2026-000123", title="Не горят фонари",
                                 place="ул. Ленина, д. 5", count=3)),
    ]  # fmt: skip
    for previous, target in itertools.product(S, S):
        if target in MOVES[previous]:
            text = status_notice(
                "Не горят фонари", previous, target, answer="Лампы заменят в среду.",
                expected_date=date(2027, 5, 15), url="https://otklik.example/public/complaints/x",
            )  # fmt: skip
            found.append((f"{previous}->{target}", text))
    return found


@pytest.mark.parametrize(("name", "text"), _every_text())
def test_every_complaint_message_passes_the_readability_check(name: str, text: str) -> None:
    report = check_text(text)
    assert report.ok, f"{name}: {report.failures}\n{text}"


def test_a_complaint_from_an_appeal_without_a_clock_starts_one_from_its_rule(
    runtime: Runtime,
) -> None:
    quiet = make_appeal(runtime, 1, status="answered", clock=False)
    with runtime.factory() as session:
        complaint = complaints.create(
            session, title="Не горят фонари", place="Ленина 5", topic="lighting",
            conversation_ids=[quiet], actor=CLI, now=runtime.clock.now(), rules=runtime.rules,
        )  # fmt: skip
        session.commit()
        clock = session.exec(select(SlaClock)).one()
        assert clock.conversation_id == quiet and clock.status == "running"
        assert complaint.id is not None
    change(runtime, complaint.id, ComplaintChange("in_progress"))
    with runtime.factory() as session:
        assert session.exec(select(SlaClock)).one().status == "met"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("На Ленина 5 не горят фонари", True),
        ("ул. Ленина, д. 5 — темно во дворе, фонарь не работает", True),
        ("Фонари не горят, Ленина 5, кв. 17", True),
        ("На Ленина 15 не горят фонари", False),
        ("На Ленина не горят фонари", False),
        ("Ленина 5: мусор не вывозят", False),
        ("Ленина 5", False),
    ],
)
def test_free_text_matches_by_a_topic_word_and_the_whole_place_with_its_house(
    runtime: Runtime, text: str, found: bool
) -> None:
    from rules.complaints import complaint_rules

    make_complaint(runtime, [make_appeal(runtime, 1)], place="ул. Ленина, д. 5")
    make_complaint(runtime, [make_appeal(runtime, 2)], place="ул. Ленина")  # a bare street
    topics = complaint_rules(None).topics_of(text)
    with runtime.factory() as session:
        match = complaints.find_match_in_text(session, text, topics)
    assert (match is not None and match.place_key == "ленина 5") == found
    if not found:
        assert match is None


def test_the_topic_words_file_is_checked_and_a_missing_one_means_the_shipped(
    tmp_path: Path,
) -> None:
    from rules.complaints import SHIPPED, complaint_rules, load_complaint_rules
    from rules.errors import RulesFileError

    assert complaint_rules(tmp_path).topics == load_complaint_rules(SHIPPED).topics
    bad = tmp_path / "complaints.yaml"
    for text, said in (("topics: [1, 2]", "topics"), ("topics: {lighting: ['  ']}", "empty"),
                       ("extra: 1", "extra"), ("topics: {a: [x", "not valid YAML")):  # fmt: skip
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(RulesFileError) as refused:
            complaint_rules(tmp_path)
        assert str(bad) in str(refused.value) and said in str(refused.value)
