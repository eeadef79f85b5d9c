"""Issue #9, «Before going live»: ``otklik serve`` refuses or warns, one line each, on every
unsafe setting (docs/deployment.md).

Refused (exit 2, one line on stderr, no traceback, before the database is touched): a
published or short ``OTKLIK_SECRET_KEY``, a key file others may read, a trusted proxy that is
not an address. Warned: the session cookie without ``Secure`` on a non-loopback address, the
API docs on, a proxy list that trusts everyone, and (from the database) demo accounts with
their published passwords.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings
from inbox.runtime import build_runtime
from inbox.secret_key import key_path, load_or_create
from inbox.startup_checks import check
from otklik.demo import load_demo
from tests.helpers.loadgen import Server

pytestmark = pytest.mark.slow


def _run(command: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")},
        "OTKLIK_DATA_DIR": str(tmp_path / "data"), "OTKLIK_PORT": "0", **env,
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "otklik.cli", command], env=full_env, capture_output=True,
        timeout=90,
    )  # fmt: skip


def _one_line_refusal(proc: subprocess.CompletedProcess[bytes], *expected: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("otklik: "), err
    for text in expected:
        assert text in lines[0], err


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("key", "expected"),
    [("change-me-in-production", "published default"), ("short-but-set", "13 characters")],
)
def test_a_published_or_short_secret_key_stops_serve_and_worker(
    tmp_path: Path, command: str, key: str, expected: str
) -> None:
    proc = _run(command, tmp_path, OTKLIK_SECRET_KEY=key)
    _one_line_refusal(proc, "OTKLIK_SECRET_KEY", expected)
    assert not (tmp_path / "data" / "otklik.sqlite3").exists()  # refused before the database


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_key_file_other_users_can_read_stops_serve_and_worker(
    tmp_path: Path, command: str
) -> None:
    load_or_create(tmp_path / "data")
    key_path(tmp_path / "data").chmod(0o640)
    _one_line_refusal(_run(command, tmp_path), "secret_key", "0640", "chmod 600")


def test_a_trusted_proxy_that_is_not_an_address_stops_serve(tmp_path: Path) -> None:
    proc = _run("serve", tmp_path, OTKLIK_TRUSTED_PROXIES="127.0.0.1,proxy.local")
    _one_line_refusal(proc, "OTKLIK_TRUSTED_PROXIES", "'proxy.local' is not an IP address")


def test_each_unsafe_setting_gets_its_warning() -> None:
    def warnings(host: str | None = None, **changes: object) -> list[str]:
        found = check(Settings(**changes), web=True, host=host)  # type: ignore[arg-type]
        assert found.refusals == []
        return found.warnings

    assert warnings() == []  # the demo on 127.0.0.1: nothing to say
    assert warnings("::1") == [] and warnings("localhost") == []
    [cookies] = warnings("0.0.0.0")
    assert "OTKLIK_SECURE_COOKIES is off while listening on 0.0.0.0" in cookies
    assert warnings("0.0.0.0", secure_cookies=True) == []
    [docs] = warnings(api_docs=True)
    assert "OTKLIK_API_DOCS is on" in docs
    [everyone] = warnings(trusted_proxies="10.0.0.5,0.0.0.0/0")
    assert "trusts every address" in everyone
    assert warnings(trusted_proxies="10.0.0.5,192.168.0.0/16") == []
    refused = check(Settings(secret_key="x" * 31), web=False)
    assert len(refused.refusals) == 1 and refused.warnings == []
    assert check(Settings(secret_key="x" * 32), web=False).refusals == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_logs_each_warning_in_one_line(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    rt = build_runtime(Settings(database_url=db_url, data_dir=data))
    load_demo(rt)
    rt.dispose()
    env = {
        "OTKLIK_DATABASE_URL": db_url, "OTKLIK_DATA_DIR": str(data), "OTKLIK_BACKGROUND": "off",
        "OTKLIK_API_DOCS": "on", "OTKLIK_TRUSTED_PROXIES": "0.0.0.0/0",
    }  # fmt: skip
    server = Server(env=env, log_path=tmp_path / "serve.log")
    server.start()
    server.stop()
    log = (tmp_path / "serve.log").read_text()
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    for text in ("OTKLIK_API_DOCS is on", "trusts every address", "demo accounts"):
        assert len([line for line in warnings if text in line]) == 1, (text, log)
    assert "Traceback" not in log
