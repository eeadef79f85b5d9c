"""Running the otklik CLI in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import FrozenClock
from core.config import Settings
from inbox.runtime import Runtime, build_runtime

OTKLIK = str(Path(sys.executable).parent / "otklik")


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """The database the processes use; today's date, since a process runs on the real clock."""
    clock = FrozenClock(datetime.now(UTC) - timedelta(minutes=5))
    runtime = build_runtime(Settings(database_url=db_url, data_dir=tmp_path), clock=clock)
    yield runtime
    runtime.dispose()


def otklik(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OTKLIK_DATABASE_URL": rt.settings.effective_database_url,
        "OTKLIK_DATA_DIR": str(rt.settings.data_dir),
    }
    return subprocess.run(
        [OTKLIK, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
