"""A local stand-in for ``api.vk.ru/method/<name>``, on loopback, for outbound VK tests.

It answers in VK's documented JSON format (``{"response": …}`` or
``{"error": {"error_code", "error_msg", "request_params"}}``) from a script of answers per
method, and records every request exactly as it arrived (method name and form parameters), so
tests assert on what vk-api really sent.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest


class FakeVkApi:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.script: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.defaults: dict[str, Any] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/method/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, method: str, response: Any) -> None:
        """Queue a successful answer for the next call of ``method``."""
        self.script[method].append({"response": response})

    def fail(self, method: str, code: int, message: str) -> None:
        """Queue a VK API error for the next call of ``method``."""
        self.script[method].append(
            {"error": {"error_code": code, "error_msg": message, "request_params": []}}
        )

    def calls(self, method: str) -> list[dict[str, str]]:
        return [params for name, params in self.requests if name == method]

    def _answer(self, method: str) -> dict[str, Any]:
        if self.script[method]:
            return self.script[method].pop(0)
        if method in self.defaults:
            return {"response": self.defaults[method]}
        return {"error": {"error_code": 3, "error_msg": "Unknown method passed"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                method = self.path.rsplit("/", 1)[-1]
                api.requests.append((method, {k: v[0] for k, v in form.items()}))
                body = json.dumps(api._answer(method)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def vk_api() -> Iterator[FakeVkApi]:
    api = FakeVkApi()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()
