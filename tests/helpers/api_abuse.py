"""What an attacker sends the back-office API (``/api/v1``), shared by the applications,
complaints, consents and mailings API suites: headers that carry no valid token, ids that name
someone else's record or no record, JSON bodies with a lone surrogate or nested thousands deep,
and token guessing behind spoofed forwarding headers. Each check asks for a 4xx, never a 500.
Also: Schemathesis with a live token, and the plain client of the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from inbox.runtime import Runtime
from otklik.web import create_app

JSON = {"Content-Type": "application/json"}

#: Headers without a valid token: each gets the same 401.
BAD_AUTH = [
    pytest.param({}, id="none"),
    pytest.param({"Authorization": "Bearer"}, id="empty"),
    pytest.param({"Authorization": "Bearer otk_not-a-real-token"}, id="unknown"),
    pytest.param({"Authorization": "Bearer otk_" + "x" * 43}, id="well-formed-unknown"),
    pytest.param({"Authorization": "Bearer " + "otk_" + "x" * 5000}, id="huge"),
    pytest.param({"Authorization": "Basic YWRtaW46YWRtaW4tZGVtbw=="}, id="basic"),
    pytest.param({"Authorization": "Token otk_abc"}, id="other-scheme"),
    pytest.param({"X-Api-Key": "otk_abc"}, id="other-header"),
]

#: Path ids no record has: zero, negative, past 64 bits, float syntax, a full-width «1»
#: (URL-encoded) and an Arabic-Indic «1» (``int()`` reads both as 1).
ODD_IDS = ("0", "-1", str(2**63), "1e3", "%EF%BC%91", "١")

#: JSON nested 5000 deep (a recursive parser's stack).
DEEP = b"[" * 5000 + b"]" * 5000


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorised(answer: httpx.Response) -> None:
    """The one 401 every missing, unknown or misplaced token gets (nothing said about which)."""
    assert answer.status_code == 401, answer.text
    assert answer.json() == {"detail": "invalid or missing API token"}
    assert answer.headers["www-authenticate"] == "Bearer"


def assert_ids_refused(send: Callable[[str], httpx.Response], existing: int) -> None:
    """``send(path_id)`` gets 404 or 422 for the id after ``existing`` (someone else's record,
    or none) and for each of ``ODD_IDS``."""
    for path_id in (str(existing + 1), *ODD_IDS):
        answer = send(path_id)
        assert answer.status_code in (404, 422), (path_id, answer.status_code, answer.text)


def post_raw(client: TestClient, url: str, token: str, body: bytes) -> httpx.Response:
    return client.post(url, content=body, headers={**bearer(token), **JSON})


def assert_odd_bodies_refused(client: TestClient, url: str, token: str, lone: str) -> None:
    """``lone`` (JSON text with a lone surrogate escape, ``\\ud800``) is 422; ``DEEP`` is 400,
    413 or 422."""
    assert "\\ud800" in lone or "\\udfff" in lone
    answer = post_raw(client, url, token, lone.encode())
    assert answer.status_code == 422, answer.text
    nested = post_raw(client, url, token, DEEP)
    assert nested.status_code in (400, 413, 422), nested.text


def assert_guessing_stopped_whatever_the_forwarding_headers_say(
    client: TestClient, runtime: Runtime, url: str
) -> None:
    """Token guesses from one address are throttled after the burst, though every guess claims
    another client in ``X-Forwarded-For``, ``X-Real-IP`` or ``Forwarded`` (the app trusts no
    proxy: the address is the peer's)."""
    runtime.settings.api_auth_failures_per_second = 0.01
    runtime.settings.api_auth_failures_burst = 5

    def spoofed(i: int) -> dict[str, str]:
        claims = {"X-Forwarded-For": f"10.0.0.{i}", "X-Real-IP": f"10.0.1.{i}"}
        return {**bearer(f"otk_guess{i}"), **claims, "Forwarded": f"for=10.0.2.{i}"}

    answers = [client.get(url, headers=spoofed(i)) for i in range(7)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 2
    assert int(answers[-1].headers["retry-after"]) >= 1


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The app over HTTP (a suite that needs more sets its own ``client``)."""
    with TestClient(create_app(runtime, start_scheduler=False)) as test_client:
        yield test_client


def fuzz_with_token(
    app: FastAPI, token: str, prefixes: tuple[str, ...], operations: int, examples: int
) -> None:
    """Schemathesis over the app's operations under ``prefixes`` (there must be
    ``operations`` of them, ``examples`` cases each) with a live ``token``: every operation is
    reached, none answers a 5xx or off its schema. (The app-wide fuzz test calls without a
    token, so it sees the 401s only.)"""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import checks

    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    chosen = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith(prefixes)
    ]
    assert len(chosen) == operations
    seen: set[str] = set()

    @settings(max_examples=examples * len(chosen), deadline=None,
              suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
    @given(case=st.one_of([op.as_strategy() for op in chosen]))
    def run(case: schemathesis.Case) -> None:
        seen.add(f"{case.method} {case.path}")
        case.call_and_validate(
            headers=bearer(token),
            checks=[checks.not_a_server_error, checks.response_schema_conformance],
        )

    run()
    assert len(seen) == operations
