"""Request guards: oversized bodies, non-UTF-8 JSON, clients over their rate get a clear 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from core.config import Settings
from inbox.runtime import build_runtime
from inbox.web.limits import RateLimitMiddleware, RateRule, TokenBuckets
from otklik.web import create_app

LIMIT = 1000


@pytest.fixture
def app(tmp_path) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    """The real app with a tiny limit and an echo route standing for a webhook."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        max_body_bytes=LIMIT,
        # One token per 100 s: no refill between a test's requests, however slow the machine
        # (at 1/s, three requests slower than a second let a fourth through).
        rate_limit_public_per_second=0.01,
        rate_limit_public_burst=3,
    )
    runtime = build_runtime(settings)  # a real runtime; the guards only read its settings
    application = create_app(runtime, start_scheduler=False)

    @application.post("/webhooks/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @application.post("/webchat/echo")
    async def chat(payload: dict[str, str]) -> dict[str, str]:
        return payload

    yield application
    runtime.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_body_within_the_limit_reaches_the_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks/echo", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}


async def test_oversized_body_is_rejected_with_413_and_a_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/webhooks/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert f"larger than {LIMIT} bytes" in response.json()["detail"]


async def test_oversized_chunked_body_without_length_is_rejected(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    response = await client.post("/webhooks/echo", content=chunks())
    assert response.status_code == 413


async def test_json_that_is_not_utf8_is_rejected_with_400(client: httpx.AsyncClient) -> None:
    body = '{"text": "привет"}'.encode("cp1251")
    response = await client.post(
        "/webhooks/echo", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]


async def test_malformed_json_gets_422_with_a_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webchat/echo", content=b'{"text": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_public_endpoint_refuses_a_client_over_its_burst(
    client: httpx.AsyncClient,
) -> None:
    statuses = [
        (await client.post("/webchat/echo", json={"text": "привет"})).status_code for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429


async def test_rate_limited_answer_says_when_to_retry(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.post("/webchat/echo", json={"text": "a"})
    response = await client.post("/webchat/echo", json={"text": "a"})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "retry" in response.json()["detail"]


async def test_operator_api_is_not_rate_limited(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        statuses = {(await c.get("/api/queue")).status_code for _ in range(10)}
    assert statuses == {401}  # asked to log in every time, never 429


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _ok(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _limited(time: FakeTime) -> Callable[[str], httpx.AsyncClient]:
    rule = RateRule("/webhooks/", per_second=2.0, burst=2)
    app = RateLimitMiddleware(_ok, [rule], TokenBuckets(clock=time))

    def client_at(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 1))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    return client_at


async def test_tokens_refill_at_the_configured_rate() -> None:
    time = FakeTime()
    client_at = _limited(time)
    async with client_at("198.51.100.1") as c:
        assert [(await c.post("/webhooks/vk")).status_code for _ in range(3)] == [200, 200, 429]
        time.now += 0.5  # one token back at 2 per second
        assert [(await c.post("/webhooks/vk")).status_code for _ in range(2)] == [200, 429]


async def test_each_source_address_has_its_own_bucket() -> None:
    time = FakeTime()
    client_at = _limited(time)
    async with client_at("198.51.100.1") as first, client_at("198.51.100.2") as second:
        for _ in range(2):
            await first.post("/webhooks/tg")
        assert (await first.post("/webhooks/tg")).status_code == 429
        assert (await second.post("/webhooks/tg")).status_code == 200


def test_bucket_table_forgets_the_oldest_clients() -> None:
    buckets = TokenBuckets(clock=FakeTime(), max_keys=3)
    rule = RateRule("/", 1.0, 1)
    for n in range(10):
        buckets.take(("/", f"10.0.0.{n}"), rule)
    assert len(buckets._buckets) == 3


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/openapi.json?x=%00", {}),
        ("POST", "/webchat/echo", {"content": b'{"text": "a\\u0000b"}',
                                    "headers": {"content-type": "application/json"}}),
        ("POST", "/webhooks/echo", {"data": {"text": "a\x00b"}}),
    ],
)  # fmt: skip
async def test_nul_characters_are_refused_with_400(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict
) -> None:
    response = await client.request(method, url, **kwargs)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
