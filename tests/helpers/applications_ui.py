"""Applications UI fixtures: a runtime with the demo accounts only, a client, logging in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FrozenClock
from inbox.runtime import Runtime
from tests.helpers.ui import client, login, ui_runtime  # noqa: F401


@pytest.fixture
def rt(db_url: str, clock: FrozenClock, tmp_path: Path) -> Iterator[Runtime]:
    runtime = ui_runtime(db_url, clock, tmp_path, demo=False)
    yield runtime
    runtime.dispose()
