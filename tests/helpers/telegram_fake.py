"""A fake Bot API for tests, in the manner of aiogram's own ``tests/mocked_bot.py``.

A real ``aiogram.Bot`` whose HTTP session is replaced: aiogram still builds and serialises
every request (``prepare_value``, as its aiohttp session does for the form it posts) and
parses every response (``check_response``, raising its own exceptions), so tests see the
exact requests the bot would make and exercise aiogram's error mapping. Responses are
scripted per call; unscripted calls succeed with a plausible result.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod

TOKEN = "123456:TEST-token"


@dataclass
class SentRequest:
    method: str
    data: dict[str, Any]
    files: dict[str, Any]

    def json(self, key: str) -> Any:
        """A field aiogram sent JSON-encoded (reply_markup, reply_parameters)."""
        return json.loads(self.data[key])


class FakeBotAPISession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[SentRequest] = []
        self.scripted: deque[tuple[int, dict[str, Any]]] = deque()
        self._ids = itertools.count(9000)

    def fail_next(self, status: int, description: str, **parameters: Any) -> None:
        """The next call gets this error (e.g. 429 with ``retry_after=7``)."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.scripted.append((status, body))

    def answer_next(self, result: Any) -> None:
        """The next call succeeds with this result (e.g. a list of updates for getUpdates)."""
        self.scripted.append((200, {"ok": True, "result": result}))

    def calls(self, method: str) -> list[SentRequest]:
        return [r for r in self.requests if r.method == method]

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        files: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                data[key] = prepared
        self.requests.append(SentRequest(method.__api_method__, data, files))
        status, body = self.scripted.popleft() if self.scripted else (200, self._ok(data, method))
        response = self.check_response(
            bot=bot, method=method, status_code=status, content=json.dumps(body)
        )
        return response.result

    def _ok(self, data: dict[str, Any], method: TelegramMethod[Any]) -> dict[str, Any]:
        if method.__api_method__ in ("sendMessage", "sendPhoto"):
            result: Any = {
                "message_id": next(self._ids),
                "date": 1795424400,
                "chat": {"id": int(data["chat_id"]), "type": "private"},
                "text": data.get("text") or data.get("caption") or "",
            }
        elif method.__api_method__ == "getUpdates":
            result = []
        else:
            result = True
        return {"ok": True, "result": result}

    async def close(self) -> None:
        pass

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:  # pragma: no cover
        yield b""


def fake_bot() -> tuple[Bot, FakeBotAPISession]:
    session = FakeBotAPISession()
    return Bot(TOKEN, session=session), session
