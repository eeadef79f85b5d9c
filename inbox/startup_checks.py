"""What ``otklik serve`` and ``otklik worker`` refuse to start with, and what they warn about.

Each finding is one line. Refusals stop the process with exit code 2 before it touches the
database or opens a port; warnings are logged and the process goes on (the demo on loopback
stays convenient). The checklist behind them: docs/deployment.md, «Before going live».
The warning about demo accounts with their published passwords needs the database and is
given by the web app at start-up (``otklik.web``).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from pydantic import ValidationError

from core.config import Settings
from inbox.secret_key import weak_key_problem

log = logging.getLogger("inbox.startup")

LOOPBACK_NAMES = {"localhost"}


@dataclass
class Findings:
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check(settings: Settings, *, web: bool, host: str | None = None) -> Findings:
    """The findings for a process with ``settings``; ``web`` for ``otklik serve`` listening
    on ``host`` (``OTKLIK_HOST`` unless ``--host`` says otherwise)."""
    found = Findings()
    if settings.secret_key and (problem := weak_key_problem(settings.secret_key)):
        found.refusals.append(problem)
    if not web:
        return found
    host = host or settings.host
    if not settings.secure_cookies and not is_loopback(host):
        found.warnings.append(
            f"OTKLIK_SECURE_COOKIES is off while listening on {host}: the session cookie is "
            "also sent over plain HTTP; set OTKLIK_SECURE_COOKIES=true when the UI is served "
            "over HTTPS"
        )
    if settings.api_docs:
        found.warnings.append(
            "OTKLIK_API_DOCS is on: /docs, /redoc and /openapi.json describe every endpoint to "
            "anyone; turn it off outside development"
        )
    if settings.max_token and not settings.max_webhook_secret:
        found.warnings.append(
            "OTKLIK_MAX_TOKEN is set without OTKLIK_MAX_WEBHOOK_SECRET: /webhooks/max refuses "
            "every update (otklik max poll still works); set the secret and run otklik max "
            "set-webhook"
        )
    if any(ipaddress.ip_network(p).prefixlen == 0 for p in settings.trusted_proxies):
        found.warnings.append(
            "OTKLIK_TRUSTED_PROXIES trusts every address: any client can set its own "
            "X-Forwarded-For and escape the per-address limits; list only your proxies"
        )
    return found


def enforce(settings: Settings, *, web: bool, host: str | None = None) -> list[str]:
    """Log the warnings; return the refusals (one line each: the caller exits with 2)."""
    found = check(settings, web=web, host=host)
    for warning in found.warnings:
        log.warning("%s", warning)
    return found.refusals


def settings_error(exc: ValidationError) -> str:
    """One line for a setting that is not valid: ``OTKLIK_<NAME>: why; …``."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"][:1]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"OTKLIK_{name}: {message}" if name else message)
    return "; ".join(parts)
