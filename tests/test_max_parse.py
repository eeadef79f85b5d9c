"""MAX Updates (tests/payloads/max, in the Bot API's documented format) → normalized events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bot.max.parse import parse_max
from core.config import RULES_DIR
from core.events import Channel, PayloadError, Place
from rules.engine import ResponseRules
from rules.profile import AgencyProfile
from tests.helpers.payloads import PAYLOADS

RULES = ResponseRules.load(RULES_DIR)


def update(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / "max" / name).read_text(encoding="utf-8"))
    return data


def test_dialog_message_is_an_appeal_in_the_chat_thread(profile: AgencyProfile) -> None:
    event = parse_max(update("dialog_message.json"), profile)
    assert event.channel is Channel.max
    assert event.facts.place is Place.private
    assert not event.facts.is_public
    assert event.external_id == "message:mid.000000000ae4a9f5019ae9d1c3b20f11"
    assert event.thread_key == "max:182739461"
    assert event.author.external_id == "71234567"
    assert event.author.display_name == "Ольга Смирнова"
    assert event.reply_target == {
        "chat_id": 182739461,
        "reply_to_message_id": "mid.000000000ae4a9f5019ae9d1c3b20f11",
    }
    assert event.published_at.isoformat() == "2026-12-04T07:00:01+00:00"


def test_photo_is_kept_as_an_attachment(profile: AgencyProfile) -> None:
    event = parse_max(update("dialog_photo.json"), profile)
    assert [(a.kind, a.ref) for a in event.attachments] == [
        ("photo", "https://i.oneme.ru/i?r=BTGBPUwtwgYUeoFhO7rESmr8")
    ]


def test_edit_is_a_new_journal_entry_marked_edited(profile: AgencyProfile) -> None:
    first = parse_max(update("dialog_message.json"), profile)
    edit = parse_max(update("dialog_edited.json"), profile)
    assert edit.external_id != first.external_id  # not dropped as a duplicate
    assert edit.thread_key == first.thread_key
    assert edit.facts.extra["edited"] is True


def test_button_press_carries_its_label_and_payload(profile: AgencyProfile) -> None:
    event = parse_max(update("callback_menu.json"), profile)
    assert event.text == "Задать вопрос"
    assert event.facts.extra["button"] == "menu:ask"
    assert event.facts.place is Place.private
    assert event.thread_key == "max:182739461"
    assert event.author.external_id == "71234567"  # the presser, not the bot that sent the menu
    assert event.external_id.startswith("callback:f9LHodD0")


def test_rating_press_is_a_service_event(profile: AgencyProfile) -> None:
    data = update("callback_menu.json")
    data["callback"]["payload"] = "rate:12:5"
    assert parse_max(data, profile).facts.place is Place.service


def test_comment_on_the_agency_channel_post(profile: AgencyProfile) -> None:
    event = parse_max(update("channel_comment.json"), profile)
    facts = event.facts
    assert facts.place is Place.post_comment
    assert facts.reply_to_official and facts.on_agency_page and facts.is_public
    assert not facts.is_own
    post = "mid.ffffbdb48e6c3775019d496b34394b84"
    assert event.thread_key == f"max:-71000000000001:post:{post}:user:73400012"
    assert event.reply_target["post_id"] == post


def test_comment_published_by_the_channel_is_its_own(profile: AgencyProfile) -> None:
    event = parse_max(update("channel_comment_by_channel.json"), profile)
    assert event.facts.is_own
    assert event.facts.extra["reply_to_comment"] == "mid.ffffbdb48e6c3775019ae9f0a1b20c01"


def test_group_mention_by_markup_names_the_bot(profile: AgencyProfile) -> None:
    event = parse_max(update("group_mention_markup.json"), profile)
    assert event.facts.place is Place.group and event.facts.is_public
    assert event.facts.mentions == ["dgh_city_bot"]
    assert profile.is_agency_handle(event.facts.mentions[0])


def test_own_bot_message_in_a_dialog_is_own(profile: AgencyProfile) -> None:
    data = update("dialog_message.json")
    data["message"]["sender"] = {
        "user_id": 590000001, "first_name": "ДГХ", "username": "dgh_city_bot", "is_bot": True,
    }  # fmt: skip
    event = parse_max(data, profile)
    assert event.facts.is_own and not event.facts.is_automatic


def test_another_bot_is_automatic(profile: AgencyProfile) -> None:
    data = update("group_chatter.json")
    data["message"]["sender"]["is_bot"] = True
    assert parse_max(data, profile).facts.is_automatic


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("dialog_message.json", "appeal"),
        ("channel_comment.json", "comment-on-official-post"),
        ("group_mention_markup.json", "mention"),
        ("group_mention_by_name.json", "mention"),
        ("channel_post.json", "own-content"),
        ("channel_comment_by_channel.json", "own-content"),
        ("bot_started.json", "appeal"),
        ("bot_added.json", "service-event"),
        ("group_chatter.json", "no-mention"),
        ("other_channel_comment.json", "no-mention"),
    ],
)
def test_rules_decide_as_the_standard_says(name: str, rule: str, profile: AgencyProfile) -> None:
    assert RULES.classify(parse_max(update(name), profile), profile).rule_id == rule


def test_unknown_update_type_is_a_service_event_not_an_error(profile: AgencyProfile) -> None:
    data = {"update_type": "message_reaction_added", "timestamp": 1796367601000, "chat_id": 1}
    event = parse_max(data, profile)
    assert event.facts.place is Place.service
    assert event.facts.extra["update_type"] == "message_reaction_added"


def test_service_updates_have_stable_distinct_ids(profile: AgencyProfile) -> None:
    started = parse_max(update("bot_started.json"), profile)
    again = parse_max(copy.deepcopy(update("bot_started.json")), profile)
    assert started.text == "/start" and started.thread_key == "max:182739461"
    assert started.facts.extra["start_payload"] == "site"
    added = parse_max(update("bot_added.json"), profile)
    assert started.external_id == again.external_id
    assert started.external_id != added.external_id


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        {"update_type": "message_created"},
        {"update_type": "message_created", "timestamp": "yesterday"},
        {"update_type": "message_created", "timestamp": True},
        {"update_type": "message_created", "timestamp": 1, "message": "hi"},
        {"update_type": "message_created", "timestamp": 10**30, "message": {}},
        {"update_type": "comment_created", "timestamp": 1, "message": {"body": {}}},
        {"update_type": 5, "timestamp": 1},
    ],
)
def test_malformed_updates_are_payload_errors(data: Any, profile: AgencyProfile) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_max(data, profile)
    assert str(raised.value)


def test_huge_timestamp_is_a_payload_error(profile: AgencyProfile) -> None:
    data = update("dialog_message.json")
    data["message"]["timestamp"] = 10**18  # a 64-bit number, but no date
    with pytest.raises(PayloadError, match="out of range"):
        parse_max(data, profile)
    data["message"]["timestamp"] = 10**20
    with pytest.raises(PayloadError, match="64 bits"):
        parse_max(data, profile)


def test_odd_unicode_is_stored_cleanly(profile: AgencyProfile) -> None:
    data = update("dialog_message.json")
    data["message"]["body"]["text"] = "Мусор\u202e\ud800 \x00 во дворе 👩‍👩‍👧"
    data["message"]["sender"]["first_name"] = "\ud83d" + "О" * 400
    event = parse_max(data, profile)
    assert "\x00" not in event.text and "\ud800" not in event.text
    assert event.author.display_name is not None and len(event.author.display_name) <= 255
