"""Background jobs (apscheduler): the SLA scan and finishing journalled events.

Jobs hold no state of their own: each run reads the truth from the database, so a restart
loses nothing. On PostgreSQL, a job takes an advisory lock, so with several processes each
run happens in one of them only.
"""

from __future__ import annotations

import logging
import zlib

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from inbox import sla
from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def _job_lock_key(name: str) -> int:
    return zlib.crc32(f"otklik:{name}".encode()) & 0x7FFFFFFF


def run_sla_scan(runtime: Runtime) -> sla.ScanResult | None:
    """One scan; None when another process holds the job (PostgreSQL only)."""
    with runtime.factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            got = session.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"),
                {"key": _job_lock_key("sla-scan")},
            ).scalar()
            if not got:
                return None
        result = sla.scan(session, runtime.clock.now())
        session.commit()
    if result.warned or result.breached:
        log.warning("SLA: %d warnings, %d breaches", len(result.warned), len(result.breached))
    return result


def quiet_apscheduler() -> None:
    """apscheduler logs two INFO lines for every run of every job ("Running job …", "… executed
    successfully"): with the outbox job every second, that is most of the log. Its loggers go
    to WARNING (missed runs and failing jobs still show), unless a logging configuration has
    set their level already."""
    logger = logging.getLogger("apscheduler")  # its children inherit the level
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def build_scheduler(runtime: Runtime, *, process_pending: bool = True) -> BackgroundScheduler:
    """The SLA scan and, unless ``process_pending`` is false (``otklik worker`` runs it in a
    loop of its own), the minutely ``process_pending``. Channels add their jobs
    (``otklik.registry.add_jobs``)."""
    quiet_apscheduler()
    scheduler = BackgroundScheduler(timezone="UTC")
    interval = runtime.settings.sla_scan_interval
    scheduler.add_job(
        run_sla_scan, "interval", seconds=interval, args=[runtime], id="sla-scan",
        max_instances=1, coalesce=True,
    )  # fmt: skip
    if process_pending:
        scheduler.add_job(
            runtime.inbox.process_pending, "interval", seconds=interval, id="process-pending",
            max_instances=1, coalesce=True,
        )  # fmt: skip
    return scheduler
