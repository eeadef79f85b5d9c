"""Mentions of the agency on other people's walls: VK sends no callback for them, so they are
searched for on an interval with ``newsfeed.search`` (a user or service token).

Each run searches every name of the agency, its screen name and its ``club<id>`` link, from a
little before the newest post seen last time; found posts go through the normal ingest (the
journal drops the ones seen before, keyed by ``post:<owner_id>_<post_id>``). The newest time
seen is kept in the database as an audit event of kind ``vk_monitor``, so a restart goes on
from there instead of re-scanning the last day.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa
from sqlmodel import col, select
from vk_api.exceptions import VkApiError

from bot.journal import process_quietly
from bot.vk.api import VkClient
from bot.vk.parse import parse_vk
from core.clock import as_utc
from core.events import PayloadError
from inbox import audit
from inbox.models import AuditEvent
from inbox.runtime import Runtime

log = logging.getLogger(__name__)

STATE_KIND = "vk_monitor"
#: A session-level lock held for the whole run, so several processes never search at once.
LOCK_KEY = zlib.crc32(b"otklik:vk-monitor") & 0x7FFFFFFF
LOCK_SQL = sa.text("SELECT pg_try_advisory_lock(:key)")
UNLOCK_SQL = sa.text("SELECT pg_advisory_unlock(:key)")
#: newsfeed.search returns at most 200 posts per page.
PAGE_SIZE = 200
#: Posts reach the search index with a delay: search again a little before the newest seen.
OVERLAP = timedelta(minutes=10)
#: The first run looks back this far (VK's own default for newsfeed.search).
FIRST_LOOKBACK = timedelta(hours=24)


@dataclass
class MonitorRun:
    since: datetime
    found: int = 0
    new: list[int] = field(default_factory=list)  # journal record ids
    errors: list[str] = field(default_factory=list)


class VkMonitor:
    def __init__(self, runtime: Runtime, client: VkClient, *, max_pages: int = 5) -> None:
        self.runtime = runtime
        self.client = client
        self.max_pages = max_pages

    def queries(self) -> list[str]:
        """What to search for: the agency's names, its screen name, its ``club<id>`` link."""
        vk = self.runtime.profile.vk
        found = list(self.runtime.profile.names)
        if vk.screen_name:
            found.append(vk.screen_name)
        if vk.group_id:
            found.append(f"club{vk.group_id}")
        return list(dict.fromkeys(found))

    def last_seen(self) -> datetime | None:
        with self.runtime.factory() as session:
            state = session.exec(
                select(AuditEvent)
                .where(AuditEvent.kind == STATE_KIND)
                .order_by(col(AuditEvent.id).desc())
            ).first()
        if state is None or "last_seen" not in state.data:
            return None
        return as_utc(datetime.fromisoformat(state.data["last_seen"]))

    def run_once(self) -> MonitorRun | None:
        """One search run; None when another process is running one (PostgreSQL only)."""
        with self.runtime.engine.connect() as lock:
            on_pg = lock.dialect.name == "postgresql"
            if on_pg and not lock.execute(LOCK_SQL, {"key": LOCK_KEY}).scalar():
                return None
            try:
                return self._run()
            finally:
                if on_pg:
                    lock.execute(UNLOCK_SQL, {"key": LOCK_KEY})

    def _run(self) -> MonitorRun:
        now = self.runtime.clock.now()
        previous = self.last_seen()
        since = previous - OVERLAP if previous else now - FIRST_LOOKBACK
        run = MonitorRun(since=since)
        newest = previous or since
        for query in self.queries():
            try:
                newest = max(newest, self._search(query, since, run))
            except (VkApiError, requests.RequestException) as exc:  # try again next run
                log.warning("VK monitoring: search for %r failed: %s", query, exc)
                run.errors.append(f"{query}: {exc}")
        if previous is None or newest > previous:
            with self.runtime.factory() as session:
                audit.record(session, STATE_KIND, now, last_seen=newest.isoformat(),
                             found=run.found, new=len(run.new))  # fmt: skip
                session.commit()
        return run

    def _search(self, query: str, since: datetime, run: MonitorRun) -> datetime:
        newest = since
        start_from: str | None = None
        group_id = self.runtime.profile.vk.group_id
        for _ in range(self.max_pages):
            params: dict[str, object] = {
                "q": query, "count": PAGE_SIZE, "start_time": int(since.timestamp()),
            }  # fmt: skip
            if start_from:
                params["start_from"] = start_from
            page = self.client.call("newsfeed.search", params)
            for item in page.get("items", []):
                if group_id and item.get("owner_id") == -group_id:
                    continue  # the community's own wall arrives through the Callback API
                try:
                    event = parse_vk(item, self.runtime.profile)
                except PayloadError as exc:
                    log.warning("VK monitoring: skipped a post: %s", exc)
                    continue
                run.found += 1
                newest = max(newest, event.published_at)
                accepted = self.runtime.inbox.accept(event)
                if not accepted.duplicate:
                    run.new.append(accepted.record_id)
                    process_quietly(self.runtime, accepted.record_id)
            start_from = page.get("next_from")
            if not start_from:
                break
        return newest
