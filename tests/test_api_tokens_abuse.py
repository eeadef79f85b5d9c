"""Every back-office API (``/api/v1``: applications, complaints, consents, mailings) over HTTP
on SQLite and PostgreSQL: a missing, unknown or misplaced token gets the same 401, and an
address guessing tokens is throttled whatever client its forwarding headers claim."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from inbox.runtime import Runtime
from tests.helpers.api_abuse import (  # noqa: F401
    BAD_AUTH,
    assert_guessing_stopped_whatever_the_forwarding_headers_say,
    assert_unauthorised,
    bearer,
    client,
)
from tests.helpers.applications_harness import make_token

#: A read of each API, and the scope that opens it.
APIS = [
    pytest.param("/api/v1/applications", "applications:read", id="applications"),
    pytest.param("/api/v1/complaints", "complaints:read", id="complaints"),
    pytest.param("/api/v1/consents?citizen_id=1", "consents:read", id="consents"),
    pytest.param("/api/v1/mailings", "mailings:read", id="mailings"),
]


@pytest.mark.parametrize("headers", BAD_AUTH)
@pytest.mark.parametrize(("url", "scope"), APIS)
def test_missing_or_unknown_tokens_get_the_same_401(
    client: TestClient, runtime: Runtime, url: str, scope: str, headers: dict[str, str]
) -> None:
    token = make_token(runtime, "backoffice", scope)  # a real token exists, just not this one
    assert client.get(url, headers=bearer(token)).status_code in (200, 404)  # it opens the API
    assert_unauthorised(client.get(url, headers=headers))


@pytest.mark.parametrize(("url", "scope"), APIS)
def test_an_address_guessing_tokens_is_stopped_whatever_forwarding_headers_say(
    client: TestClient, runtime: Runtime, url: str, scope: str
) -> None:
    assert_guessing_stopped_whatever_the_forwarding_headers_say(client, runtime, url)
