"""The operators' web interface: server-rendered pages (Jinja2) with htmx, in Russian."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from core.config import Settings
from inbox.secret_key import effective_secret_key
from inbox.web.ui.security import LoginRequired

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Add the session middleware, static files and the UI routers to ``app``.

    The cookie's ``Max-Age`` (and its signature's age) is ``session_max_age`` since the last
    time the session changed (Starlette re-signs it then); the absolute bound since login is
    checked in ``security.current_operator``.
    """
    from inbox.web.ui import (
        admin_routes,
        api_routes,
        application_routes,
        auth_routes,
        complaint_routes,
        conversation_routes,
        dashboard_routes,
        gaps_routes,
        inbox_routes,
        journal_routes,
        kb_review_routes,
        mailing_routes,
    )
    from inbox.web.ui.templating import render

    # Unsafe settings (a published or short key, cookies without Secure on a public address)
    # are refused or reported by ``otklik serve`` before it gets here: inbox/startup_checks.py.
    app.add_middleware(
        SessionMiddleware,
        secret_key=effective_secret_key(settings),
        session_cookie="otklik_session",
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    for module in (
        auth_routes, inbox_routes, conversation_routes, dashboard_routes, admin_routes,
        journal_routes, application_routes, gaps_routes, complaint_routes, mailing_routes,
        kb_review_routes,
    ):  # fmt: skip
        app.include_router(module.router, prefix="/ui")
    app.include_router(dashboard_routes.public_router)
    app.include_router(complaint_routes.public_router)
    app.include_router(mailing_routes.public_router)
    app.include_router(api_routes.router)

    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/inbox", status_code=303)

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/ui/login"})
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "Войдите как оператор: /ui/login"}, status_code=401)
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(("/ui", "/public")):
            return await http_exception_handler(request, exc)
        return render(request, "error.html", None, status_code=exc.status_code, detail=exc.detail)
