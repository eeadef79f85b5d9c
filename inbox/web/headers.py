"""Security headers on every response, and a Content-Security-Policy on every HTML page.

* ``Content-Security-Policy`` (HTML only): scripts, styles, images and connections from this
  origin only, no inline script or style, no plugins, no ``<base>``, forms post here only,
  and no framing. Every script of the operator UI and the web chat is a static file, so an
  injected ``<script>`` or ``onerror=`` would not run even if escaping ever failed.
* ``X-Frame-Options: DENY`` (older browsers' word for ``frame-ancestors 'none'``: no
  clickjacking of the «Ответить» button). The one exception: the web chat page may be shown
  in an ``<iframe>`` by the sites listed in ``OTKLIK_WEBCHAT_FRAME_ANCESTORS`` (its
  ``frame-ancestors`` names them; ``X-Frame-Options`` cannot, so it is left out there).
* ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (a link to a VK post does not tell VK which appeal an
  operator had open).
* ``Cache-Control: no-store`` on what holds personal data (the operator UI, the JSON APIs,
  the web chat's messages) unless the route chose its own caching; static files and the
  public ratings page stay cacheable.

A plain ASGI middleware: it only edits the response's start message, so streams (the
inbox's server-sent events) and background tasks are untouched.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
NO_FRAMES = (b"x-frame-options", b"DENY")
#: The web chat page, which an agency may embed in its own site.
WEBCHAT_PAGE = "/chat"
#: Paths whose answers hold personal data: never stored by a browser or a proxy.
PERSONAL_PREFIXES = ("/ui", "/api/")
#: ...except these (the UI's scripts and styles).
CACHEABLE_PREFIXES = ("/ui/static/",)


def is_personal(path: str) -> bool:
    return path.startswith(PERSONAL_PREFIXES) and not path.startswith(CACHEABLE_PREFIXES)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, webchat_frame_ancestors: list[str] | None = None) -> None:
        self.app = app
        self.webchat_frame_ancestors = webchat_frame_ancestors or []
        self.webchat_policy = CONTENT_SECURITY_POLICY.replace(
            "frame-ancestors 'none'", "frame-ancestors " + " ".join(self.webchat_frame_ancestors)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        personal = is_personal(scope["path"])
        framed = bool(self.webchat_frame_ancestors) and scope["path"] == WEBCHAT_PAGE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [(k, v) for k, v in ALWAYS if k not in names]
                if not framed:
                    extra.append(NO_FRAMES)
                content_type = dict(headers).get(b"content-type", b"").lower()
                if content_type.startswith(b"text/html"):
                    policy = self.webchat_policy if framed else CONTENT_SECURITY_POLICY
                    extra.append((b"content-security-policy", policy.encode()))
                if personal and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(app: Any, settings: Settings) -> None:
    """Install the middleware on ``app``; call it last, so it wraps the other middlewares
    (their 413 and 429 answers get the headers too)."""
    app.add_middleware(
        SecurityHeadersMiddleware, webchat_frame_ancestors=settings.webchat_frame_ancestors
    )
