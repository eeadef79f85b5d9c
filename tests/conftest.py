"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, a frozen clock, the inbox.

Database tests take the ``db_url`` fixture, parametrized over both backends. PostgreSQL tests
use a fresh database per test session (created from OTKLIK_TEST_PG_URL's server, dropped at
the end), so concurrent runs never share tables. Without a server they are skipped, unless
OTKLIK_REQUIRE_PG=1 (set in CI), where a missing server is an error.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from core.clock import FrozenClock
from core.config import RULES_DIR, Settings
from inbox.db import make_engine, upgrade
from inbox.runtime import Runtime, build_runtime
from rules.profile import AgencyProfile, load_profile
from tests.helpers.payloads import PG_URL

#: The ``vk_api`` and ``max_api`` fixtures: loopback stand-ins for the VK and MAX APIs
#: (tests/helpers/vk_api_server.py, tests/helpers/max_api_server.py).
pytest_plugins = ["tests.helpers.vk_api_server", "tests.helpers.max_api_server"]

# Command-line tools cache the KB search index (knowledge_base/index_cache.py): the tests
# write theirs to a directory of their own, never the user's ~/.cache/otklik.
os.environ.setdefault("OTKLIK_CACHE_DIR", tempfile.mkdtemp(prefix="otklik-test-cache-"))


@pytest.fixture(scope="session")
def profile() -> AgencyProfile:
    return load_profile(RULES_DIR / "agency.example.yaml")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = f"otklik_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("OTKLIK_REQUIRE_PG"):
            raise RuntimeError(f"PostgreSQL is required but unreachable: {exc}") from exc
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if request.param == "sqlite":
        template = Path(request.getfixturevalue("sqlite_template"))
        path = tmp_path / "otklik.sqlite3"
        path.write_bytes(template.read_bytes())
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def runtime(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    rt = build_runtime(settings, clock=clock)
    yield rt
    rt.dispose()
