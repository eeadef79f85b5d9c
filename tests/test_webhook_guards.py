"""The app's guards in front of a real webhook (VK Callback API): bad input never reaches the
journal, forged events are refused and logged without the citizen's personal data, and a
flood from one address is slowed down without losing what was acknowledged."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from fastapi.testclient import TestClient

from inbox.logging import PersonalDataFilter
from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.vk import event, journal, vk_settings


@pytest.fixture
def guarded(runtime: Runtime) -> Runtime:
    rt = vk_settings(runtime)
    settings = rt.settings.model_copy(
        update={
            "max_body_bytes": 4096,
            "rate_limit_webhooks_per_second": 0.001,
            "rate_limit_webhooks_burst": 5,
        }
    )
    return dataclasses.replace(rt, settings=settings)


def test_oversized_webhook_is_413_and_not_stored(guarded: Runtime) -> None:
    big = event("message_new.json")
    big["object"]["message"]["text"] = "мусор " * 2000
    with TestClient(create_app(guarded, start_scheduler=False)) as client:
        answer = client.post("/webhooks/vk", json=big)
    assert answer.status_code == 413 and "4096 bytes" in answer.json()["detail"]
    assert journal(guarded) == []


def test_webhook_in_a_wrong_encoding_is_400_and_not_stored(guarded: Runtime) -> None:
    body = json.dumps(event("message_new.json"), ensure_ascii=False).encode("cp1251")
    with TestClient(create_app(guarded, start_scheduler=False)) as client:
        answer = client.post(
            "/webhooks/vk", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400 and "UTF-8" in answer.json()["detail"]
    assert journal(guarded) == []


def test_forged_webhook_is_refused_and_logged_through_the_masking_filter(
    guarded: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    forged = event("message_new.json", secret="guess")
    app = create_app(guarded, start_scheduler=False)
    with TestClient(app) as client, caplog.at_level(logging.WARNING):
        answer = client.post("/webhooks/vk", json=forged)
    assert answer.status_code == 403
    assert journal(guarded) == []
    assert any("wrong secret" in r.getMessage() for r in caplog.records)
    # The app installed the masking filter on the handlers (here pytest's): see test_logging_*.
    assert any(isinstance(f, PersonalDataFilter) for f in caplog.handler.filters)


def test_a_flood_from_one_address_gets_429_and_acknowledged_events_are_kept(
    guarded: Runtime,
) -> None:
    with TestClient(create_app(guarded, start_scheduler=False)) as client:
        answers = [
            client.post(
                "/webhooks/vk", json=event("message_new.json", event_id=f"flood-{n}")
            ).status_code
            for n in range(8)
        ]
    assert answers[:5] == [200] * 5 and set(answers[5:]) == {429}
    assert sorted(r.external_id for r in journal(guarded)) == [f"flood-{n}" for n in range(5)]
