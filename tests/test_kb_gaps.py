"""Issue #13, learning from hand-offs: what the bot could not answer, grouped for the authors.

The clustering is measured on knowledge_base/eval/gaps.yaml (our own questions, each with the
topic a person gave it); the questions come from real web-chat dialogues with the citizen bot
(hand-offs for want of an answer) and from its weak answers; the supervisor page, the
spreadsheet row that starts a new entry, and ``otklik kb gaps``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.clock import FrozenClock
from inbox.auth import hash_password
from inbox.db import session_scope
from inbox.gaps import unanswered_questions
from inbox.models import AuditEvent, Message, Operator, Role
from inbox.runtime import Runtime
from knowledge_base.gaps import cluster, find_gaps, purity
from knowledge_base.spreadsheet import read_sheet
from otklik.cli import app as cli
from otklik.web import create_app
from tests.helpers.citizen_harness import citizen_bot

EVAL = Path(__file__).parent.parent / "knowledge_base" / "eval" / "gaps.yaml"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHIPS = ["Где бесплатно чипировать собаку?", "чипирование собак где проводят",
         "нужно ли чипировать собаку по закону, звоните 8 900 123-45-67"]  # fmt: skip
CAMP = ["Как получить путёвку в детский лагерь?", "путевка в лагерь для ребенка куда писать"]


def test_clusters_match_the_topics_people_gave_our_questions() -> None:
    items = yaml.safe_load(EVAL.read_text(encoding="utf-8"))
    questions, topics = [i["text"] for i in items], [i["topic"] for i in items]
    groups = cluster(questions)
    pure, inverse = purity(groups, topics)
    assert pure >= 0.85 and inverse >= 0.7, (pure, inverse)  # measured: 0.87 and 0.73
    assert sorted(i for g in groups for i in g) == list(range(len(questions)))


def test_odd_input_forms_no_cluster_and_never_fails() -> None:
    assert cluster([]) == []
    assert cluster(["", "???", "12345", "\u202e\u200b"]) == []
    assert find_gaps(["а" * 10_000, "собака " * 500]) != []


@pytest.fixture
def app(runtime: Runtime, clock: FrozenClock):  # type: ignore[no-untyped-def]
    app = create_app(runtime, start_scheduler=False)
    app.state.citizen_bot = citizen_bot(runtime, clock)  # a tiny KB: none of these is in it
    with session_scope(runtime.factory) as session:
        for login, role in (("olga", Role.supervisor), ("anna", Role.operator)):
            session.add(Operator(login=login, display_name=login, role=role.value,
                                 password_hash=hash_password("long-password")))  # fmt: skip
    return app


def ask(app, text: str) -> None:  # type: ignore[no-untyped-def]
    visitor = TestClient(app)
    assert visitor.get("/chat").status_code == 200
    sent = visitor.post("/api/chat/messages", json={"text": text})
    assert sent.status_code in (200, 201, 202), sent.text


def test_hand_offs_of_web_chat_dialogues_become_clusters_with_personal_data_masked(
    app, runtime: Runtime, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    for text in [*CHIPS, *CAMP]:
        ask(app, text)
    with runtime.factory() as session:
        handoffs = session.exec(
            AuditEvent.__table__.select().where(AuditEvent.kind == "handoff")  # type: ignore[attr-defined]
        ).all()
        assert len(handoffs) == 5
        found = unanswered_questions(
            session, clock.now() - timedelta(days=1), clock.now() + timedelta(seconds=1)
        )
        assert not unanswered_questions(
            session, clock.now() - timedelta(days=30), clock.now() - timedelta(days=1)
        )
    assert len(found) == 5 and {q.why for q in found} == {"handoff"}
    texts = {q.text for q in found}
    assert "123-45-67" not in " ".join(texts)  # masked
    gaps = find_gaps([q.text for q in found])
    assert sorted(g.count for g in gaps) == [2, 3]


def test_a_weak_answer_counts_a_confident_one_does_not(
    runtime: Runtime, clock: FrozenClock
) -> None:
    from tests.helpers.applications_harness import make_application

    _, _, conversation_id = make_application(runtime)
    now = clock.now()
    with session_scope(runtime.factory) as session:
        for text, confidence in (("где чипировать собаку", 0.41), ("отопление когда дадут", 0.99)):
            session.add(Message(conversation_id=conversation_id, direction="in",
                                author_kind="citizen", channel="telegram", text=text,
                                published_at=now))  # fmt: skip
            session.flush()
            session.add(Message(conversation_id=conversation_id, direction="out", author_kind="bot",
                                channel="telegram", text="ответ", published_at=now,
                                meta={"kb_confidence": confidence}))  # fmt: skip
            session.flush()
    with runtime.factory() as session:
        found = unanswered_questions(session, now - timedelta(hours=1), now + timedelta(hours=1))
    assert [(q.text, q.why) for q in found] == [("где чипировать собаку", "low_confidence")]


def log_in(client: TestClient, login: str) -> None:
    token = CSRF.search(client.get("/ui/login").text)
    assert token
    done = client.post("/ui/login", data={"login": login, "password": "long-password",
                                          "csrf_token": token.group(1)})  # fmt: skip
    assert done.status_code == 200


def test_supervisors_see_the_clusters_and_start_an_entry_from_one(app) -> None:  # type: ignore[no-untyped-def]
    for text in CHIPS:
        ask(app, text)
    operator = TestClient(app)
    log_in(operator, "anna")
    assert operator.get("/ui/gaps").status_code == 403
    supervisor = TestClient(app)
    log_in(supervisor, "olga")
    page = supervisor.get("/ui/gaps?days=7")
    assert page.status_code == 200 and "3 вопр." in page.text and "чипиро" in page.text
    assert "123-45-67" not in page.text
    row = supervisor.get("/ui/gaps/1.csv?days=7")
    assert row.status_code == 200 and row.headers["content-type"].startswith("text/csv")
    header, draft = list(csv.reader(io.StringIO(row.content.decode("utf-8-sig"))))
    assert header[3] == "Вопрос" and draft[3] in CHIPS and draft[0].startswith("new-")
    assert supervisor.get("/ui/gaps/2.csv?days=7").status_code == 404
    assert supervisor.get("/ui/gaps/99999999999999999999.csv").status_code in (404, 422)
    assert supervisor.get("/ui/gaps?days=100000").status_code == 422
    # the author fills in the answers and imports the row (knowledge_base.spreadsheet)
    draft[6:9] = ["Чипирование проводят ветеринарные станции.", "Чипирование собак проводят "
                  "городские ветеринарные станции по записи.", "Отдел ветеринарии"]  # fmt: skip
    out = io.StringIO()
    csv.writer(out).writerows([header, draft])
    (entry,) = read_sheet(out.getvalue().encode(), "csv")
    assert entry.question in CHIPS and len(entry.phrasings) == 2


def test_cli_prints_the_clusters(app, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for text in [*CHIPS, *CAMP]:
        ask(app, text)
    monkeypatch.setenv("OTKLIK_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(runtime.settings.data_dir))
    from core.config import get_settings

    get_settings.cache_clear()
    done = CliRunner().invoke(cli, ["kb", "gaps", "--days", "3650", "--json"])
    get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["questions"] == 5 and sorted(c["count"] for c in data["clusters"]) == [2, 3]
