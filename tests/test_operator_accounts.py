"""``otklik operator``: a fresh deployment's first administrator, password resets and the
account list from the command line, on both databases; the web login sees the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.config import Settings, get_settings
from inbox.runtime import Runtime, build_runtime
from otklik.cli import app
from otklik.web import create_app
from tests.helpers.login import attempt, events, logged_in

runner = CliRunner()
PASSWORD = "first-admin-password"


@pytest.fixture
def rt(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI and a web app (on the real clock: the CLI has no other) on one database."""
    monkeypatch.setenv("OTKLIK_DATABASE_URL", db_url)
    get_settings.cache_clear()
    runtime = build_runtime(
        Settings(database_url=db_url, data_dir=tmp_path, rate_limit_public_burst=1000)
    )
    yield runtime
    runtime.dispose()
    get_settings.cache_clear()


def otklik(*args: str, stdin: str = "") -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_the_first_admin_is_made_from_the_command_line_and_can_log_in(rt: Runtime) -> None:
    code, out, err = otklik(
        "operator", "add", " Olga ", "--name", "Ольга Петрова", "--role", "admin",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == "created admin olga"
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        assert attempt(client, "olga", PASSWORD).status_code == 303
        assert client.get("/ui/admin/operators").status_code == 200  # an admin indeed
    (event,) = events(rt, "operator_created")
    assert event.actor == "cli" and event.data == {"login": "olga", "role": "admin"}
    code, out, _ = otklik("operator", "list")
    assert code == 0 and out.splitlines() == ["olga\tadmin\tactive\tОльга Петрова"]


def test_the_prompt_asks_twice_and_refuses_a_mismatch(rt: Runtime) -> None:
    code, _, _ = otklik("operator", "add", "ivan", "--name", "Иван", stdin="one-password\ntwo\n")
    assert code != 0
    code, out, err = otklik(
        "operator", "add", "ivan", "--name", "Иван", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "created operator ivan"
    assert PASSWORD not in out  # the prompt hides what is typed


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["olga", "--name", "Вторая Ольга"], PASSWORD, "Логин «olga» уже занят"),
        (["petr", "--name", "Пётр"], "short", "не короче 8 символов"),
        (["petr", "--name", "  "], PASSWORD, "Нужны логин и имя"),
        (["petr", "--name", "Пётр", "--role", "boss"], PASSWORD, "'boss' is not one of"),
    ],
)
def test_bad_requests_get_a_one_line_error(
    rt: Runtime, args: list[str], stdin: str, message: str
) -> None:
    otklik("operator", "add", "olga", "--name", "Ольга", "--password-stdin", stdin=PASSWORD)
    code, _, err = otklik("operator", "add", *args, "--password-stdin", stdin=stdin)
    assert code == 2
    assert message in err and "Traceback" not in err
    code, out, _ = otklik("operator", "list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["olga"]


def test_a_password_reset_from_the_command_line_ends_sessions(rt: Runtime) -> None:
    otklik("operator", "add", "anna", "--name", "Анна", "--password-stdin", stdin=PASSWORD)
    with TestClient(create_app(rt, start_scheduler=False)) as desk:
        assert attempt(desk, "anna", PASSWORD).status_code == 303
        assert logged_in(desk)
        code, out, err = otklik(
            "operator", "password", "ANNA", "--password-stdin", stdin="new-pass-42\n"
        )
        assert code == 0, err
        assert "their sessions have ended" in out
        assert not logged_in(desk), "a session survived the reset"
        assert attempt(desk, "anna", PASSWORD).status_code == 401
        assert attempt(desk, "anna", "new-pass-42").status_code == 303
    assert [e.actor for e in events(rt, "operator_password_reset")] == ["cli"]
    code, _, err = otklik("operator", "password", "nobody", "--password-stdin", stdin="x" * 9)
    assert code == 2 and "no operator with login 'nobody'" in err
