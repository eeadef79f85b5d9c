"""Monitoring of mentions on other walls with newsfeed.search, through vk-api, on loopback."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from bot.vk.api import VkClient
from bot.vk.monitor import FIRST_LOOKBACK, LOCK_KEY, LOCK_SQL, OVERLAP, UNLOCK_SQL, VkMonitor
from core.clock import FrozenClock
from inbox.models import Conversation, InboundRecord
from inbox.runtime import Runtime
from tests.helpers.payloads import payload
from tests.helpers.vk_api_server import FakeVkApi

EMPTY = {"items": [], "count": 0, "total_count": 0}


def monitor(runtime: Runtime, api: FakeVkApi) -> VkMonitor:
    client = VkClient("service-token", api_version="5.199", base_url=api.url)
    client.api.RPS_DELAY = 0
    return VkMonitor(runtime, client)


def page() -> dict:
    return json.loads(payload("vk", "newsfeed_search_page.json"))


def test_searches_every_name_screen_name_and_club_link(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    vk_api.defaults["newsfeed.search"] = EMPTY
    monitor(runtime, vk_api).run_once()
    calls = vk_api.calls("newsfeed.search")
    assert [c["q"] for c in calls] == [
        "Департамент городского хозяйства", "ДГХ", "dgh_city", "club200000001",
    ]  # fmt: skip
    since = int((clock.now() - FIRST_LOOKBACK).timestamp())
    assert all(c["start_time"] == str(since) and c["count"] == "200" for c in calls)
    assert all(c["access_token"] == "service-token" and c["v"] == "5.199" for c in calls)


def test_found_mentions_are_ingested_once_and_own_wall_is_left_to_the_callback(
    runtime: Runtime, vk_api: FakeVkApi
) -> None:
    vk_api.defaults["newsfeed.search"] = page()  # every query finds the same posts
    run = monitor(runtime, vk_api).run_once()
    assert run.found == 8 and len(run.new) == 2  # 2 posts × 4 queries; the own post skipped
    with runtime.factory() as session:
        ids = session.exec(select(InboundRecord.external_id).order_by(col(InboundRecord.id)))
        assert list(ids) == ["post:-187654321_48211", "post:545678901_48212"]
        kinds = sorted(c.kind for c in session.exec(select(Conversation)))
    assert kinds == ["mention", "mention"]
    again = monitor(runtime, vk_api).run_once()
    assert again.new == []


def test_next_from_is_followed_to_the_next_page(runtime: Runtime, vk_api: FakeVkApi) -> None:
    first, second = page(), page()
    first["items"], second["items"] = first["items"][:1], first["items"][1:2]
    first["next_from"] = "5/-187654321_48211"
    vk_api.respond("newsfeed.search", first)
    vk_api.respond("newsfeed.search", second)
    vk_api.defaults["newsfeed.search"] = EMPTY
    run = monitor(runtime, vk_api).run_once()
    assert len(run.new) == 2
    calls = vk_api.calls("newsfeed.search")
    assert "start_from" not in calls[0] and calls[1]["start_from"] == "5/-187654321_48211"
    assert calls[1]["q"] == calls[0]["q"]


def test_a_restart_goes_on_from_the_newest_post_seen(
    runtime: Runtime, clock: FrozenClock, vk_api: FakeVkApi
) -> None:
    newest = max(item["date"] for item in page()["items"] if item["owner_id"] != -200000001)
    clock.set(datetime.fromtimestamp(newest, UTC) + timedelta(minutes=5))
    vk_api.respond("newsfeed.search", page())
    vk_api.defaults["newsfeed.search"] = EMPTY
    monitor(runtime, vk_api).run_once()
    clock.advance(timedelta(days=3))
    vk_api.requests.clear()
    restarted = monitor(runtime, vk_api)  # a new process: state comes from the database
    restarted.run_once()
    starts = {c["start_time"] for c in vk_api.calls("newsfeed.search")}
    assert starts == {str(newest - int(OVERLAP.total_seconds()))}


def test_a_failed_search_is_logged_and_the_others_still_run(
    runtime: Runtime, vk_api: FakeVkApi
) -> None:
    vk_api.fail("newsfeed.search", 6, "Too many requests per second")
    vk_api.defaults["newsfeed.search"] = page()
    run = monitor(runtime, vk_api).run_once()
    assert len(run.errors) == 1 and "[6]" in run.errors[0]
    assert len(run.new) == 2


def test_search_is_skipped_while_another_process_runs_it(
    runtime: Runtime, vk_api: FakeVkApi
) -> None:
    vk_api.defaults["newsfeed.search"] = EMPTY
    if runtime.engine.dialect.name != "postgresql":
        assert monitor(runtime, vk_api).run_once() is not None  # SQLite: one process only
        return
    with runtime.engine.connect() as other:
        other.execute(LOCK_SQL, {"key": LOCK_KEY})
        assert monitor(runtime, vk_api).run_once() is None
        assert vk_api.calls("newsfeed.search") == []
        other.execute(UNLOCK_SQL, {"key": LOCK_KEY})
    assert monitor(runtime, vk_api).run_once() is not None


def test_vk_unreachable_is_logged_and_the_run_ends(runtime: Runtime) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/method/"
    run = VkMonitor(runtime, VkClient("service-token", base_url=dead)).run_once()
    assert run is not None and len(run.errors) == 4 and run.new == []
