"""Issue #9, item 1: with ``OTKLIK_SECRET_KEY`` unset, nobody can forge a session.

The server signs with a random key generated once and kept in ``$OTKLIK_DATA_DIR/secret_key``
(mode 0600), the same for every process that shares the data directory. A cookie signed with
the key this project once shipped as its default (``change-me-in-production``) is an
anonymous visitor's: it neither opens an admin page nor creates an account.
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlmodel import select

from core.config import Settings
from inbox.models import Operator
from inbox.runtime import build_runtime
from inbox.secret_key import PUBLISHED_DEFAULT, SecretKeyError, key_path, load_or_create
from otklik.demo import load_demo
from tests.helpers.loadgen import Server

pytestmark = pytest.mark.slow

COOKIE = "otklik_session"


def forge_session(key: str, session: dict[str, object]) -> str:
    """A session cookie exactly as Starlette's SessionMiddleware signs one (itsdangerous)."""
    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(key).sign(data).decode()


@pytest.fixture
def server(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, str]]:
    """``otklik serve`` with the demo data and no OTKLIK_SECRET_KEY; the admin's id."""
    monkeypatch.delenv("OTKLIK_SECRET_KEY", raising=False)  # the subprocess inherits this
    data = tmp_path / "data"
    rt = build_runtime(Settings(database_url=db_url, data_dir=data))
    load_demo(rt)
    with rt.factory() as session:
        admin = session.exec(select(Operator).where(Operator.login == "admin")).one()
    rt.dispose()
    env = {
        "OTKLIK_DATABASE_URL": db_url, "OTKLIK_DATA_DIR": str(data),
        "OTKLIK_BACKGROUND": "off",
    }  # fmt: skip
    srv = Server(env=env, log_path=tmp_path / "serve.log")
    srv.start()
    yield srv, str(admin.id)
    srv.stop()


def _admin_session(admin_id: str) -> dict[str, object]:
    return {"operator_id": int(admin_id), "login_at": time.time(), "csrf": "forged-csrf"}


def test_a_session_forged_with_the_published_default_key_is_refused(
    server: tuple[Server, str], db_url: str, tmp_path: Path
) -> None:
    srv, admin_id = server
    forged = forge_session(PUBLISHED_DEFAULT, _admin_session(admin_id))
    with httpx.Client(base_url=srv.url, cookies={COOKIE: forged}, timeout=10) as client:
        page = client.get("/ui/admin/operators", follow_redirects=False)
        created = client.post(
            "/ui/admin/operators",
            data={"login": "mallory", "display_name": "Mallory", "role": "admin",
                  "password": "mallory-was-here", "csrf_token": "forged-csrf"},
            follow_redirects=False,
        )  # fmt: skip
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    assert created.status_code in (303, 403)
    assert created.headers.get("location") != "/ui/admin/operators"
    rt = build_runtime(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    with rt.factory() as session:
        assert session.exec(select(Operator).where(Operator.login == "mallory")).first() is None
    rt.dispose()

    # The control: the same forgery signed with the key the server generated and kept in its
    # data directory (0600) is accepted, so the refusal above is the key's doing, not a
    # malformed cookie's. Whoever can read that file can sign sessions: hence 0600.
    path = key_path(tmp_path / "data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert len(key) >= 60 and key != PUBLISHED_DEFAULT
    cookie = forge_session(key, _admin_session(admin_id))
    with httpx.Client(base_url=srv.url, cookies={COOKIE: cookie}, timeout=10) as client:
        page = client.get("/ui/admin/operators", follow_redirects=False)
    assert page.status_code == 200 and "Сотрудники" in page.text


def test_every_process_on_one_data_directory_uses_the_same_key(tmp_path: Path) -> None:
    """Six processes started at once: one key is created, all six read it back."""
    code = (
        "import sys; from inbox.secret_key import load_or_create; "
        "print(load_or_create(sys.argv[1]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(6)
    ]
    keys = {proc.communicate(timeout=60)[0].decode().strip() for proc in procs}
    assert len(keys) == 1 and len(next(iter(keys))) >= 60
    assert keys == {load_or_create(tmp_path)}
    rt = build_runtime(Settings(database_url="sqlite://", data_dir=tmp_path))  # as the CLI
    assert rt.settings.secret_key in keys
    rt.dispose()
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left


def test_a_key_file_other_users_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path)
    key_path(tmp_path).chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_or_create(tmp_path)


def test_a_set_key_wins_over_the_file(tmp_path: Path) -> None:
    key = "k" * 40
    rt = build_runtime(Settings(database_url="sqlite://", data_dir=tmp_path, secret_key=key))
    assert rt.settings.secret_key == key
    rt.dispose()
    assert not key_path(tmp_path).exists()
