"""``otklik triage`` on native payloads of every channel, as the platforms send them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from otklik.cli import app
from tests.helpers.payloads import PAYLOADS

runner = CliRunner()


def triage(channel: str, name: str) -> dict:
    result = runner.invoke(app, ["triage", "--channel", channel, str(PAYLOADS / channel / name)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("channel", "name", "kind", "hours"),
    [
        ("telegram", "private_message.json", "appeal", 2),
        ("telegram", "private_voice.json", "appeal", 2),
        ("telegram", "discussion_comment.json", "comment", 2),
        ("telegram", "discussion_reply_in_thread.json", "comment", 2),
        ("telegram", "group_mention_entity.json", "mention", 4),
        ("telegram", "group_mention_by_name.json", "mention", 4),
        ("telegram", "automatic_forward.json", "other", None),
        ("telegram", "channel_post.json", "other", None),
        ("telegram", "group_chatter.json", "other", None),
        ("telegram", "group_member_joined.json", "other", None),
        ("telegram", "callback_query.json", "other", None),
        ("vk", "message_new.json", "appeal", 2),
        ("vk", "wall_reply_new.json", "comment", 2),
        ("vk", "wall_reply_own.json", "other", None),
        ("vk", "wall_post_own.json", "other", None),
        ("vk", "confirmation.json", "other", None),
        ("vk", "monitored_post_link_mention.json", "mention", 4),
        ("vk", "monitored_post_name_mention.json", "mention", 4),
        ("vk", "monitored_post_no_mention.json", "other", None),
        ("email", "cp1251_plain.eml", "appeal", 2),
        ("email", "koi8r_qp.eml", "appeal", 2),
        ("email", "html_only_base64.eml", "appeal", 2),
        ("email", "wrong_charset_label.eml", "appeal", 2),
        ("email", "reply_in_thread_with_attachment.eml", "appeal", 2),
        ("email", "auto_reply.eml", "other", None),
        ("email", "bounce.eml", "other", None),
        ("email", "mailing_list.eml", "other", None),
        ("phone", "call_started.json", "appeal", 2),
        ("phone", "utterance.json", "appeal", 2),
        ("phone", "dtmf.json", "appeal", 2),
        ("phone", "recording.json", "other", None),
        ("phone", "call_ended.json", "other", None),
        ("max", "dialog_message.json", "appeal", 2),
        ("max", "dialog_photo.json", "appeal", 2),
        ("max", "callback_menu.json", "appeal", 2),
        ("max", "channel_comment.json", "comment", 2),
        ("max", "group_mention_markup.json", "mention", 4),
        ("max", "group_mention_by_name.json", "mention", 4),
        ("max", "group_chatter.json", "other", None),
        ("max", "channel_post.json", "other", None),
        ("max", "channel_comment_by_channel.json", "other", None),
        ("max", "other_channel_comment.json", "other", None),
        ("max", "bot_started.json", "appeal", 2),
        ("max", "bot_added.json", "other", None),
    ],
)
def test_payload_is_classified_by_the_standard(
    channel: str, name: str, kind: str, hours: int | None
) -> None:
    report = triage(channel, name)
    assert report["channel"] == channel
    assert report["kind"] == kind
    assert report["requires_response"] is (hours is not None)
    assert report["deadline_hours"] == hours
    for key in ("text", "author", "external_id", "thread_key"):
        assert key in report


def test_comment_on_official_post_is_due_in_two_hours_from_publication() -> None:
    report = triage("telegram", "discussion_comment.json")
    assert report["published_at"] == "2025-11-23T11:10:00+00:00"
    assert report["due_at"] == "2025-11-23T13:10:00+00:00"
    assert report["thread_key"] == "tg:-1002000000002:post:1040:user:402345678"
    assert report["source_url"] == "https://t.me/dgh_city/310?comment=1045"


def test_mention_entity_is_found_by_utf16_offsets_after_emoji() -> None:
    report = triage("telegram", "group_mention_entity.json")
    assert report["mentions"] == ["@dgh_city"]


def test_mention_by_name_in_dative_case() -> None:
    report = triage("telegram", "group_mention_by_name.json")
    assert report["mentions"] == ["Департаменту городского хозяйства"]


def test_vk_link_mention_names_the_community() -> None:
    report = triage("vk", "monitored_post_link_mention.json")
    assert "club200000001" in report["mentions"]


@pytest.mark.parametrize(
    ("name", "text", "author"),
    [
        ("cp1251_plain.eml", "Во дворе дома 7 по улице Гагарина", "Иван Иванов"),
        ("koi8r_qp.eml", "Когда дадут отопление в доме 3", "Пётр"),
        ("html_only_base64.eml", "прошу отремонтировать детскую площадку", "Ольга"),
        ("wrong_charset_label.eml", "Почему не убирают снег на остановке?", None),
    ],
)
def test_russian_mail_is_decoded(name: str, text: str, author: str | None) -> None:
    report = triage("email", name)
    assert text in report["text"]
    assert "\r" not in report["text"]
    assert report["author"].get("display_name") == author


def test_html_only_mail_loses_scripts_and_styles() -> None:
    report = triage("email", "html_only_base64.eml")
    assert "alert" not in report["text"] and "color" not in report["text"]


def test_email_reply_joins_the_thread_of_the_first_letter() -> None:
    first = triage("email", "cp1251_plain.eml")
    reply = triage("email", "reply_in_thread_with_attachment.eml")
    assert reply["thread_key"] == first["thread_key"]
    assert reply["author"]["external_id"] == first["author"]["external_id"] == "ivanov@mail.example"
    assert reply["attachments"][0]["name"] == "фото.jpg"


@pytest.mark.parametrize(
    ("channel", "stdin", "message"),
    [
        ("telegram", b"{not json", "not valid JSON"),
        ("telegram", b'{"message": {}}', "no update_id"),
        ("telegram", b'{"update_id": "x"}', "update_id"),
        ("vk", b"[1, 2]", "JSON object"),
        ("vk", b'{"hello": 1}', "not a VK"),
        ("vk", b'{"type": "wall_reply_new", "object": {"from_id": "abc"}}', "from_id"),
        ("phone", b'{"event_id": "1", "type": "call.utterance"}', "call_id"),
        ("phone", b"\xff\xfe", "UTF-8"),
        ("email", b"", "empty"),
        ("email", b"just some text without headers", "From"),
    ],
)
def test_malformed_payload_gives_one_line_error_and_nonzero_exit(
    channel: str, stdin: bytes, message: str
) -> None:
    result = runner.invoke(app, ["triage", "--channel", channel, "-"], input=stdin)
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("channel", "stdin"), [("telegram", b'{"update_id": 1, "message": 5}'), ("email", b"\x00")]
)
def test_malformed_payload_in_a_real_process_prints_no_traceback(
    channel: str, stdin: bytes
) -> None:
    message = ""
    proc = subprocess.run(
        [sys.executable, "-m", "otklik.cli", "triage", "--channel", channel, "-"],
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert proc.stdout == b""


def test_triage_reads_a_profile_file(tmp_path) -> None:
    other = tmp_path / "agency.yaml"
    other.write_text("names: [Управа района Южный]\nvk: {group_id: 1}\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "triage", "--channel", "telegram", "--profile", str(other),
            str(PAYLOADS / "telegram" / "group_mention_by_name.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["kind"] == "other"


def test_bad_profile_is_reported_with_its_file(tmp_path) -> None:
    bad = tmp_path / "agency.yaml"
    bad.write_text("names: []\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "triage",
            "--channel",
            "vk",
            "--profile",
            str(bad),
            str(PAYLOADS / "vk" / "message_new.json"),
        ],
    )
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "names" in result.stderr
