"""Settings from the environment (prefix ``OTKLIK_``), in one place."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: A web origin: scheme, host and an optional port, nothing else (no path, no wildcard).
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
RULES_DIR = PACKAGE_ROOT / "rules"


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``OTKLIK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="OTKLIK_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir/otklik.sqlite3``.
    database_url: str = ""
    #: The agency profile (names, accounts) used to decide what mentions the agency.
    profile: Path = RULES_DIR / "agency.example.yaml"
    #: Directory holding ``response.yaml``, ``moderation.yaml``, ``calendar.yaml``.
    rules_dir: Path = RULES_DIR
    #: The agency's knowledge-base entries (``*.yaml``); empty means ``data_dir/knowledge_base``.
    #: Until it holds entries, the entries shipped in the package are read; the first edit in
    #: the admin UI copies them here (docs/knowledge-base.md, «Where the entries live»).
    kb_dir: Path | None = None
    #: Files that can be rebuilt at any time (the knowledge base's search index,
    #: ``knowledge_base/index_cache.py``); empty means ``$XDG_CACHE_HOME/otklik`` or
    #: ``~/.cache/otklik``.
    cache_dir: Path | None = None
    #: Secret used to sign sessions and CSRF tokens of the web UI. Empty: a random key is
    #: generated once and kept in ``data_dir/secret_key`` (``inbox/secret_key.py``); set, it
    #: must have 32+ characters (``otklik serve`` and ``otklik worker`` refuse shorter ones).
    secret_key: str = ""
    #: Send the session cookie over HTTPS only (``Secure``). Off for the local demo on
    #: http://127.0.0.1; a deployment behind HTTPS must set ``OTKLIK_SECURE_COOKIES=true``.
    secure_cookies: bool = False
    #: An operator's login lasts at most this long (seconds), however active they are.
    session_max_age: int = 12 * 3600
    #: Login throttling (docs/operator-ui.md): this many failed logins of one login name
    #: within ``login_failure_window`` seconds lock that name for ``login_lockout`` seconds...
    login_max_failures: int = 5
    #: ...and this many from one client address lock the address. 0 turns a limit off.
    login_ip_max_failures: int = 20
    login_failure_window: int = 15 * 60
    login_lockout: int = 15 * 60
    #: Addresses (IPs or CIDR networks, comma-separated) of the reverse proxies in front of
    #: ``otklik serve``. Only a request from one of them may name its client in
    #: ``X-Forwarded-For`` (and its scheme in ``X-Forwarded-Proto``); empty: nobody, and the
    #: client address is the peer of the TCP connection (docs/deployment.md).
    trusted_proxies: Annotated[list[str], NoDecode] = []
    #: ``/docs``, ``/redoc`` and ``/openapi.json``: off unless ``OTKLIK_API_DOCS=on``.
    api_docs: bool = False
    #: Sites (origins such as ``https://www.agency.example``, comma-separated) that may show
    #: the web chat page ``/chat`` in an ``<iframe>``; empty: none, like every other page.
    webchat_frame_ancestors: Annotated[list[str], NoDecode] = []
    #: Password checks one web process runs at once; one more login is answered 503 at once
    #: (a login flood must not starve the operators' pages). 0: half the CPU cores.
    login_checks_at_once: int = 0
    #: The public address of this server (``https://otklik.agency.example``): links in
    #: messages to public pages, such as a shared complaint's tracker, and the one-click
    #: unsubscribe links of mailings' letters (``List-Unsubscribe``) start with it. Empty: the
    #: tracker links are paths (``/public/complaints/...``) and the unsubscribe links use
    #: ``http://HOST:PORT``; a deployment must set it.
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    #: How often the SLA scan runs, in seconds.
    sla_scan_interval: int = 60
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = 1_048_576
    #: Deepest nesting of arrays and objects accepted in a JSON body; deeper ones get 400
    #: before any parser sees them (no platform sends more than a dozen levels).
    max_json_depth: int = 64
    #: Per client address: webhooks (platforms send from few addresses, in bursts)...
    rate_limit_webhooks_per_second: float = 100.0
    rate_limit_webhooks_burst: int = 500
    #: ...and public pages and APIs (web chat, ratings, login), where a person is behind each.
    #: The web chat polls every 2 s: 5/s leaves room for ten chats behind one office NAT.
    rate_limit_public_prefixes: list[str] = [
        "/api/chat", "/chat", "/webchat", "/ratings", "/rate", "/public", "/login", "/ui/login",
    ]  # fmt: skip
    rate_limit_public_per_second: float = 5.0
    rate_limit_public_burst: int = 60
    #: The back-office API (docs/api.md): requests per second and burst per API token...
    api_rate_per_second: float = 10.0
    api_rate_burst: int = 100
    #: ...and failed authentications per client address before it gets 429 for a while.
    api_auth_failures_per_second: float = 0.2
    api_auth_failures_burst: int = 20
    #: New web-chat conversations (docs/webchat.md#limits) one client address (an IPv6 /64)
    #: may open in any 60 minutes and in any minute, and one chat session in any 60 minutes;
    #: over one the chat answers 429. An office or a mobile operator's NAT shares one
    #: address: 60 an hour is one a minute all hour long; 10 a minute lets a flood open no
    #: more than that in its first seconds. Messages in an open conversation are not limited
    #: by these. 0 turns one off.
    webchat_new_conversations_per_address_per_hour: int = 60
    webchat_new_conversations_per_address_per_minute: int = 10
    webchat_new_conversations_per_session_per_hour: int = 10
    #: Telegram bot token from @BotFather; empty means the Telegram adapter is off.
    telegram_token: str = ""
    #: The secret given to setWebhook; Telegram sends it in X-Telegram-Bot-Api-Secret-Token.
    telegram_webhook_secret: str = ""
    # MAX (docs/max.md): the channel is on when the bot token is set.
    #: The bot's token from the MAX partner platform (business.max.ru); empty: MAX is off.
    max_token: str = ""
    #: The secret given to ``POST /subscriptions``; MAX sends it in ``X-Max-Bot-Api-Secret``.
    #: Required for ``POST /webhooks/max`` (without it the webhook refuses every update).
    max_webhook_secret: str = ""
    #: Base URL of the Bot API (``https://platform-api2.max.ru``); set only for a proxy or a
    #: test server.
    max_api_url: str = ""
    #: Requests per second the outbox sends to MAX at most (MAX documents 30 for the API).
    max_rate_per_second: float = 20.0
    #: The citizen bot's payment link; {purpose}, {amount} and {number} are filled in.
    payment_url_template: str = "https://pay.example/?purpose={purpose}&amount={amount}&id={number}"
    #: Services and fees the citizen bot offers (see rules/catalog.yaml).
    bot_catalog: Path = RULES_DIR / "catalog.yaml"
    #: A dialogue message that ``process_pending`` finishes more than this many seconds after
    #: it arrived is handed to an operator instead of being answered by the bot.
    bot_late_after: int = 600

    # VK (docs/vk.md): the channel is on when token, group id, confirmation and secret are set.
    #: Community access token (messages, wall comments).
    vk_token: str = ""
    vk_group_id: int | None = None
    #: The string the Callback API expects back on ``confirmation``.
    vk_confirmation: str = ""
    #: The secret key set in the Callback API settings; events without it are rejected.
    vk_secret: str = ""
    #: A user or service token for ``newsfeed.search`` (monitoring); empty: no monitoring.
    vk_search_token: str = ""
    vk_api_version: str = "5.199"
    #: Base URL of the API (``https://api.vk.ru/method/``); set only for a proxy or a test server.
    vk_api_url: str = ""
    #: How often mentions on other walls are searched, in seconds.
    vk_monitor_interval: int = 300
    # Phone robot (docs/phone-webhook.md): on when the shared secret is set.
    phone_secret: str = ""
    #: Signed requests older or newer than this (seconds) are rejected as replays.
    phone_max_skew: int = 300
    #: How often the outbox delivers queued replies, in seconds (``otklik worker`` starts its
    #: next round at once after a round that sent something).
    outbox_interval: float = 1.0
    #: A message claimed for sending by a process that died before recording the result is
    #: offered again after this many seconds (``inbox/outbox.py``). Longer than any send.
    outbox_lease: int = 300

    # Processes (docs/deployment.md). The defaults run everything in the one ``otklik serve``.
    #: ``inline``: a webhook journals its event, answers, then processes it (rules, the citizen
    #: bot) on an executor in the web process. ``worker``: the webhook (and the web chat) only
    #: journals and answers; an ``otklik worker`` process processes the journal.
    processing: Literal["inline", "worker"] = "inline"
    #: ``inline``: ``otklik serve`` also runs the outbox, the scheduler jobs (SLA scan, ratings,
    #: VK monitoring) and the mailbox reader. ``off``: it does not; an ``otklik worker`` does.
    background: Literal["inline", "off"] = "inline"
    #: Seconds between two ``process_pending`` rounds of ``otklik worker`` that found nothing.
    pending_interval: float = 1.0
    #: A journalled event whose processing failed this many times is set aside as failed:
    #: listed for administrators (``/ui/admin/journal``, ``otklik journal failed``), not tried
    #: again until one of them retries it (inbox/journal_failures.py).
    journal_max_attempts: int = 5
    #: Seconds a failing event waits before its third try; the wait doubles after each failure.
    journal_retry_delay: float = 30.0

    @property
    def vk_enabled(self) -> bool:
        return bool(self.vk_token and self.vk_group_id and self.vk_confirmation and self.vk_secret)

    # Email channel (off unless the IMAP host, SMTP host and the From address are set).
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    #: IMAP over TLS (port 993); false means plain IMAP (port 143, loopback or tests only).
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    #: The agency's address letters are sent from, e.g. ``Приёмная ДГХ <priem@dgh.example>``.
    email_from: str = ""
    #: Seconds between two polls of the mailbox.
    email_poll_interval: int = 30

    @property
    def email_enabled(self) -> bool:
        return bool(self.imap_host and self.smtp_host and self.email_from)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated_networks(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        networks = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or a CIDR network (e.g. 10.0.0.0/8)"
                ) from None
        return networks

    @field_validator("webchat_frame_ancestors", mode="before")
    @classmethod
    def _comma_separated_origins(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        origins = [str(item).strip().rstrip("/") for item in items if str(item).strip()]
        for origin in origins:
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin like https://www.agency.example")
        return origins

    @field_validator("kb_dir", "cache_dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def effective_kb_dir(self) -> Path:
        return self.kb_dir if self.kb_dir is not None else self.data_dir / "knowledge_base"

    @property
    def effective_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        return (Path(base) if base else Path.home() / ".cache") / "otklik"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'otklik.sqlite3').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
