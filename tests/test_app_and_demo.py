"""The web app's health and queue endpoints, the demo data and the core CLI commands."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.clock import FrozenClock
from inbox.runtime import Runtime
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.ui import login

runner = CliRunner()


def test_demo_loads_once_and_the_queue_is_most_urgent_first(
    runtime: Runtime, clock: FrozenClock
) -> None:
    assert load_demo(runtime) == (4, 12)
    assert load_demo(runtime) == (0, 0)
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        anonymous = client.get("/api/queue")
        assert anonymous.status_code == 401  # citizens' appeals are for operators only
        login(client, "anna", "operator-demo")
        queue = client.get("/api/queue").json()
    # 12 demo events; the group chatter about the ice rink needs no response
    assert len(queue) == 11
    seconds = [item["seconds_left"] for item in queue]
    assert seconds == sorted(seconds)
    assert queue[0]["seconds_left"] < 0  # breached items lead the queue
    kinds = {item["kind"] for item in queue}
    assert kinds == {"appeal", "comment", "mention"}


def test_queue_filters(runtime: Runtime) -> None:
    load_demo(runtime)
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        login(client, "anna", "operator-demo")
        mentions = client.get("/api/queue", params={"kind": "mention"}).json()
        email = client.get("/api/queue", params={"channel": "email"}).json()
        assert client.get("/api/queue", params={"limit": 0}).status_code == 422
    assert {m["kind"] for m in mentions} == {"mention"} and len(mentions) == 2
    assert {m["channel"] for m in email} == {"email"} and len(email) == 2


def test_cli_ingest_then_sla_scan(db_url: str, tmp_path, monkeypatch) -> None:
    from core.config import get_settings
    from otklik.cli import app

    monkeypatch.setenv("OTKLIK_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        payload = "tests/payloads/vk/message_new.json"
        first = runner.invoke(app, ["ingest", "--channel", "vk", payload])
        again = runner.invoke(app, ["ingest", "--channel", "vk", payload])
        assert first.exit_code == 0 and again.exit_code == 0, first.output
        assert json.loads(first.stdout)["kind"] == "appeal"
        assert json.loads(again.stdout)["duplicate"] is True
        scan = runner.invoke(app, ["sla", "scan"])
        assert scan.exit_code == 0
        # the fixture's VK message is from 2025: long breached
        assert len(json.loads(scan.stdout)["breached"]) == 1
        bad = runner.invoke(app, ["ingest", "--channel", "vk", "-"], input="{")
        assert bad.exit_code == 2 and "not valid JSON" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_queue_counts_down_with_the_clock(runtime: Runtime, clock: FrozenClock) -> None:
    load_demo(runtime)
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        login(client, "anna", "operator-demo")
        before = {i["id"]: i["seconds_left"] for i in client.get("/api/queue").json()}
        clock.advance(timedelta(minutes=10))
        after = {i["id"]: i["seconds_left"] for i in client.get("/api/queue").json()}
    assert all(after[k] == before[k] - 600 for k in before)


def test_the_server_warns_when_demo_passwords_are_in_use(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    def started_warnings() -> list[str]:
        caplog.clear()
        app = create_app(runtime, start_scheduler=True)
        with caplog.at_level(logging.WARNING, logger="otklik.web"), TestClient(app):
            pass
        return [r.getMessage() for r in caplog.records if "demo accounts" in r.getMessage()]

    assert started_warnings() == []  # no demo data: nothing to say
    load_demo(runtime)
    [warning] = started_warnings()
    assert "are active: admin, svetlana, anna, ivan." in warning
    assert "otklik operator password LOGIN" in warning


@pytest.mark.parametrize("broken", ["rules", "profile"])
def test_serve_and_worker_refuse_broken_rules_in_one_line(tmp_path, broken: str) -> None:  # type: ignore[no-untyped-def]
    """A typo in a rules file must stop the server with the file's name, not a traceback
    (and must not leave a server half-started)."""
    import shutil
    import subprocess
    import sys

    from core.config import Settings

    rules = tmp_path / "rules"
    shutil.copytree(Settings().rules_dir, rules, ignore=shutil.ignore_patterns("*.py"))
    target = rules / ("response.yaml" if broken == "rules" else "agency.example.yaml")
    target.write_text("rules: [unclosed\n", encoding="utf-8")
    env = {
        **os.environ, "OTKLIK_DATA_DIR": str(tmp_path / "data"), "OTKLIK_RULES_DIR": str(rules),
        "OTKLIK_PROFILE": str(rules / "agency.example.yaml"), "OTKLIK_PORT": "0",
    }  # fmt: skip
    for command in ("serve", "worker"):
        proc = subprocess.run(
            [sys.executable, "-m", "otklik.cli", command],
            env=env, capture_output=True, timeout=60,
        )  # fmt: skip
        err = proc.stderr.decode()
        assert proc.returncode == 2, (command, err)
        assert "Traceback" not in err and target.name in err, (command, err)
