"""Errors of ``/api/v1`` in one shape, ``ErrorOut``: ``{"detail", "code", "field"}``.

Invalid input is answered here rather than by FastAPI's default handler, which echoes the
input back: a JSON string with a lone surrogate (``"\\ud800"``) then cannot be encoded and
the client got a 500. Here nothing the client sent is echoed but field names, escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

#: The parts of a location that only say where the value was.
_PLACES = {"body", "query", "path", "header"}


class ErrorOut(BaseModel):
    """Every error: ``detail`` for people; ``code`` and ``field`` for programs, where known."""

    detail: str
    code: str | None = Field(
        default=None,
        description="invalid, not_found, conflict, idempotency; absent for auth and rate errors",
    )
    field: str | None = None


def _safe(value: object, limit: int = 80) -> str:
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit]


def validation_response(exc: RequestValidationError) -> JSONResponse:
    problems: list[str] = []
    field: str | None = None
    for error in list(exc.errors())[:5]:
        where = [_safe(p) for p in error.get("loc", ()) if p not in _PLACES]
        name = ".".join(where) or "request"
        field = field or name
        problems.append(f"{name}: {_safe(error.get('msg', 'invalid'), 200)}")
    body = ErrorOut(detail="; ".join(problems) or "invalid request", code="invalid", field=field)
    return JSONResponse(body.model_dump(), status_code=422)


class ApiRoute(APIRoute):
    """A route whose validation errors are ``ErrorOut`` (and never a 500)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except RequestValidationError as exc:
                return validation_response(exc)

        return handler
