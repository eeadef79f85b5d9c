"""Recorded channel payloads and the PostgreSQL test URL shared by the suites."""

from __future__ import annotations

import os
from pathlib import Path

PAYLOADS = Path(__file__).parent.parent / "payloads"


PG_URL = os.environ.get("OTKLIK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def payload(channel: str, name: str) -> bytes:
    return (PAYLOADS / channel / name).read_bytes()
