"""Issue #12: an edit of the rules in the admin UI reaches the citizen bot and every worker.

Before, ``admin_routes`` replaced ``rt.rules``: the citizen bot kept the object it was built
with, and ``otklik worker`` processes kept the rules they had read at start-up, though
docs/operator-ui.md said that edits apply at once. Now each holds a ``Reloadable`` that looks
at the files' size, time and inode on each use.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.citizen.app import citizen_bot
from core.config import RULES_DIR, Settings
from inbox.auth import hash_password
from inbox.db import make_engine, session_factory, session_scope
from inbox.models import Operator, Role, SlaClock
from inbox.runtime import Runtime, build_runtime
from otklik.web import create_app
from rules.engine import ResponseRules
from rules.reloadable import Reloadable
from tests.helpers.loadgen import Server, WorkerProcess
from tests.helpers.vk_api_server import FakeVkApi

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "admin-password-long"
APPEAL_2H = "kind: appeal\n    deadline: {hours: 2}"
APPEAL_3H = "kind: appeal\n    deadline: {hours: 3}"


def copy_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    assert APPEAL_2H in (rules / "response.yaml").read_text(encoding="utf-8")
    return rules


def appeal_hours(rules: ResponseRules) -> int:
    found = rules.deadline_of("appeal")
    assert found is not None and found.deadline_hours is not None
    return int(found.deadline_hours)


# -- the provider ----------------------------------------------------------------------------


def test_a_changed_file_is_loaded_again_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "response.yaml"
    source = Reloadable(lambda: ResponseRules.load(rules_dir), [path, rules_dir / "calendar.yaml"])
    first = source.get()
    assert appeal_hours(first) == 2 and source.get() is first  # unchanged files: same object
    path.write_text(path.read_text(encoding="utf-8").replace(APPEAL_2H, APPEAL_3H), "utf-8")
    assert appeal_hours(source.get()) == 3 and source.generation == 2
    path.write_text("rules: [", encoding="utf-8")  # an edit by hand gone wrong
    assert appeal_hours(source.get()) == 3 and appeal_hours(source.get()) == 3
    assert sum("keeping the rules loaded before" in r.message for r in caplog.records) == 1
    with pytest.raises(ValueError, match=r"response\.yaml"):
        source.reload()  # an explicit reload says so
    assert appeal_hours(source.get()) == 3


# -- in the web process: the citizen bot ------------------------------------------------------


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Runtime:
    settings = Settings(database_url=db_url, data_dir=tmp_path, rules_dir=copy_rules(tmp_path))
    runtime = build_runtime(settings)
    with session_scope(runtime.factory) as session:
        session.add(
            Operator(
                login="boss", display_name="Админ", role=Role.admin.value,
                password_hash=hash_password(PASSWORD),
            )
        )  # fmt: skip
    return runtime


def admin_saves_rules(client: httpx.Client | TestClient, text: str) -> None:
    form = client.get("/ui/login")
    token = CSRF.search(form.text)
    assert token
    logged = client.post(
        "/ui/login", data={"login": "boss", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert logged.status_code == 200, logged.text
    page = client.get("/ui/admin/rules")
    token = CSRF.search(page.text)
    assert token
    saved = client.post("/ui/admin/rules", data={"csrf_token": token.group(1), "text": text})
    assert "Правила сохранены" in saved.text, saved.text


def test_an_edit_in_the_admin_ui_reaches_the_citizen_bot_built_before_it(rt: Runtime) -> None:
    app = create_app(rt)
    with TestClient(app) as client:
        bot = citizen_bot(app)  # built (and cached by the app) before the edit
        assert appeal_hours(bot.context.rules) == 2
        text = (rt.settings.rules_dir / "response.yaml").read_text(encoding="utf-8")
        admin_saves_rules(client, text.replace(APPEAL_2H, APPEAL_3H))
        assert citizen_bot(app) is bot
        assert appeal_hours(bot.context.rules) == 3  # the hand-off clock's deadline
        assert appeal_hours(rt.inbox.rules) == 3
    rt.dispose()


# -- in a worker process -----------------------------------------------------------------------


def vk_message(text: str, message_id: int, published: int) -> bytes:
    data = json.loads((Path(__file__).parent / "payloads" / "vk" / "message_new.json").read_text())
    data["event_id"] = f"reload-{message_id}"
    data["object"]["message"].update(id=message_id, text=text, date=published)
    return json.dumps(data, ensure_ascii=False).encode()


@pytest.mark.slow
def test_an_edit_in_the_admin_ui_reaches_a_running_worker_process(
    rt: Runtime, db_url: str, tmp_path: Path, vk_api: FakeVkApi
) -> None:
    rt.dispose()
    vk_api.defaults["messages.send"] = 1
    env = {
        "OTKLIK_DATABASE_URL": db_url,
        "OTKLIK_DATA_DIR": str(tmp_path),
        "OTKLIK_RULES_DIR": str(rt.settings.rules_dir),
        "OTKLIK_SECRET_KEY": "rules-reload-test-" + "k" * 32,
        "OTKLIK_VK_TOKEN": "token",
        "OTKLIK_VK_GROUP_ID": "200000001",
        "OTKLIK_VK_CONFIRMATION": "confirm",
        "OTKLIK_VK_SECRET": "s3cr3t-callback",
        "OTKLIK_VK_API_URL": vk_api.url,
        "OTKLIK_PROCESSING": "worker",
        "OTKLIK_BACKGROUND": "off",
        "OTKLIK_PENDING_INTERVAL": "0.2",
        "OTKLIK_OUTBOX_INTERVAL": "0.2",
    }
    server = Server(env=env, log_path=tmp_path / "server.log")
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    published = int(time.time())
    server.start()
    try:
        worker.start()  # reads the rules now: appeals in 2 hours
        with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as client:
            text = (rt.settings.rules_dir / "response.yaml").read_text(encoding="utf-8")
            admin_saves_rules(client, text.replace(APPEAL_2H, APPEAL_3H))
            body = vk_message("Позовите оператора, пожалуйста", 9001, published)
            answer = client.post("/webhooks/vk", content=body)
            assert (answer.status_code, answer.text) == (200, "ok")
        clocks = wait_for_clocks(db_url)
    finally:
        worker.stop()
        server.stop()
    # The appeal's clock, and the hand-off's if the bot's turn has started one by now.
    assert {c.due_at - c.started_at for c in clocks} == {timedelta(hours=3)}


def wait_for_clocks(db_url: str, timeout: float = 60.0) -> list[SlaClock]:
    engine = make_engine(db_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with session_factory(engine)() as session:
                clocks = list(session.exec(select(SlaClock)))
            if clocks:
                return clocks
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError("the worker started no response clock")
