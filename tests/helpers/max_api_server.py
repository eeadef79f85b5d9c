"""A local stand-in for the MAX Bot API (``platform-api2.max.ru``), on loopback.

MAX's servers cannot run here, so the tests point the real client library (``maxapi``) at this
one through ``OTKLIK_MAX_API_URL``. It speaks the documented format
(https://dev.max.ru/docs-api): ``POST /messages?chat_id=`` answers ``{"message": Message}``,
``GET /messages?chat_id=`` ``{"messages": [...]}``, ``POST /messages/{mid}/comments``
``{"message": CommentMessage}``, ``POST /answers`` and ``/subscriptions`` ``{"success": true}``,
``GET /updates`` ``{"updates": [...], "marker": n}``; errors are ``{"code", "message"}`` with
the HTTP status. It checks the ``Authorization`` header and records every request as it
arrived (method, path, query, JSON body, monotonic time), so tests assert on what the library
really sent. ``fail`` queues an error for the next call of a path; ``hang_at = n`` makes the
n-th ``POST /messages`` store the message and then not answer until ``released`` is set (a
worker killed mid-send; ``hanging`` is set meanwhile).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

TOKEN = "max-test-token-7f3a9c"
BOT_USER = {
    "user_id": 590000001,
    "first_name": "ДГХ: приёмная",
    "username": "dgh_city_bot",
    "is_bot": True,
    "last_activity_time": 1796367720000,
    "name": "ДГХ: приёмная",
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class FakeMaxApi:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        #: Messages the bot sent, per chat, oldest first (what ``GET /messages`` lists).
        self.chats: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.updates: list[dict[str, Any]] = []
        self.marker = 0
        self.hang_at: int | None = None
        self.hanging = threading.Event()
        self.released = threading.Event()
        self._stored = 0
        self._mids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- scripting ----------------------------------------------------------------------------
    def fail(self, key: str, status: int, code: str = "error", message: str = "") -> None:
        """Answer the next ``key`` (``"POST /messages"``) with an error."""
        self.script[key].append((status, {"code": code, "message": message or code}))

    def calls(self, key: str) -> list[Request]:
        method, _, path = key.partition(" ")
        return [r for r in self.requests if r.method == method and r.path == path]

    def sent(self) -> list[Request]:
        return self.calls("POST /messages")

    # -- the API ------------------------------------------------------------------------------
    def _new_message(self, chat_id: int, body: dict[str, Any]) -> dict[str, Any]:
        message = {
            "sender": BOT_USER,
            "recipient": {"chat_id": chat_id, "chat_type": "dialog"},
            "timestamp": int(time.time() * 1000),
            "body": {
                "mid": f"mid.fake{next(self._mids):024x}",
                "seq": 116328147937080000 + next(self._mids),
                "text": body.get("text"),
                "attachments": body.get("attachments") or [],
            },
        }
        if body.get("link"):
            message["link"] = {"type": "reply", "message": {"mid": body["link"]["mid"], "seq": 1}}
        self.chats[chat_id].append(message)
        return message

    def _answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        key = f"{request.method} {request.path}"
        if request.path.startswith("/messages/") and request.path.endswith("/comments"):
            key = f"{request.method} /messages/{{mid}}/comments"
        if self.script[key]:
            return self.script[key].pop(0)
        if key == "POST /messages":
            chat_id = int(request.query.get("chat_id", "0"))
            text = (request.body or {}).get("text") or ""
            if not chat_id or len(text) >= 4000:
                return 400, {"code": "proto.payload", "message": "bad message"}
            return 200, {"message": self._new_message(chat_id, request.body or {})}
        if key == "GET /messages":
            chat_id = int(request.query.get("chat_id", "0"))
            count = int(request.query.get("count", "50"))
            return 200, {"messages": list(reversed(self.chats[chat_id]))[:count]}
        if key == "POST /messages/{mid}/comments":
            post = request.path.split("/")[2]
            comment = {
                "sender": BOT_USER,
                "recipient": {"chat_type": "channel", "chat_id": -71000000000001, "post_id": post},
                "timestamp": int(time.time() * 1000),
                "body": {
                    "mid": f"mid.comment{next(self._mids):020x}",
                    "seq": 1,
                    "text": (request.body or {}).get("text"),
                },
            }
            return 200, {"message": comment}
        if key in ("POST /answers", "POST /subscriptions", "DELETE /subscriptions"):
            return 200, {"success": True}
        if key == "GET /subscriptions":
            return 200, {"subscriptions": []}
        if key == "GET /updates":
            with self._lock:
                marker = int(request.query.get("marker") or 0)
                batch = self.updates[marker:]
                return 200, {"updates": batch, "marker": marker + len(batch)}
        if key == "GET /me":
            return 200, BOT_USER
        return 404, {"code": "not.found", "message": f"no method {key}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length", 0) or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                request = Request(self.command, url.path, query, body)
                api.requests.append(request)
                if self.headers.get("Authorization") != TOKEN:
                    status, answer = 401, {"code": "verify.token", "message": "Invalid token"}
                else:
                    status, answer = api._answer(request)
                if request.method == "POST" and url.path == "/messages" and status == 200:
                    api._stored += 1
                    if api._stored == api.hang_at:  # stored, but the sender never hears back
                        api.hanging.set()
                        api.released.wait(120)
                        return
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FakeMaxApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def max_api() -> Iterator[FakeMaxApi]:
    api = FakeMaxApi().start()
    yield api
    api.stop()
