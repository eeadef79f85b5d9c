"""Fixtures of the security tests: clients of one app, each from its own client address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from inbox.runtime import Runtime
from otklik.web import create_app
from tests.helpers.login import IP_A, ClientFor


@pytest.fixture
def client_for(rt: Runtime) -> Iterator[ClientFor]:
    """``client_for(ip)``: a client of the module's ``rt`` app (or of ``runtime``'s)."""
    with ExitStack() as stack:

        def open_client(ip: str = IP_A, runtime: Runtime | None = None) -> TestClient:
            app = create_app(runtime or rt, start_scheduler=False)
            return stack.enter_context(TestClient(app, client=(ip, 50000)))

        yield open_client
