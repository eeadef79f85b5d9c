"""Helpers adapters share around the inbound journal."""

from __future__ import annotations

import logging

from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def process_quietly(runtime: Runtime, record_id: int) -> None:
    """Process a journalled event after the platform was answered.

    A failure is already logged and recorded on the journal row by ``Inbox.process``; the
    scheduler's ``process_pending`` tries it again, so nothing is lost and nothing is raised.
    """
    try:
        runtime.inbox.process(record_id)
    except Exception:
        log.debug("event %s left for process_pending", record_id)
