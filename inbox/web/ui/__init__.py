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

from inbox.config import Settings
from inbox.web.ui.security import LoginRequired

log = logging.getLogger(__name__)
DEMO_SECRET = "change-me-in-production"
STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


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
        conversation_routes,
        dashboard_routes,
        inbox_routes,
    )
    from inbox.web.ui.templating import render

    if settings.secret_key == DEMO_SECRET:
        log.warning("OTKLIK_SECRET_KEY is the demo value: anyone can forge sessions; set it")
    if not settings.secure_cookies and settings.host not in LOOPBACK_HOSTS:
        log.warning(
            "OTKLIK_SECURE_COOKIES is off: the session cookie is also sent over plain HTTP; "
            "set it when the UI is served over HTTPS"
        )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="otklik_session",
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    for module in (auth_routes, inbox_routes, conversation_routes, dashboard_routes, admin_routes,
                   application_routes):  # fmt: skip
        app.include_router(module.router, prefix="/ui")
    app.include_router(dashboard_routes.public_router)
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
