"""Issue #9, should-fix: apscheduler's two INFO lines for every job run (every second, with the
outbox job) do not drown the log; its warnings still show."""

from __future__ import annotations

import logging
import threading

import pytest

from inbox.runtime import Runtime
from inbox.scheduler import build_scheduler


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scheduler_runs_jobs_without_logging_each_run(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    runs = threading.Semaphore(0)
    scheduler = build_scheduler(runtime, process_pending=False)
    scheduler.add_job(runs.release, "interval", seconds=0.2, id="tick")
    with caplog.at_level(logging.INFO):
        scheduler.start()
        try:
            for _ in range(3):
                assert runs.acquire(timeout=10)  # the job ran three times
        finally:
            scheduler.shutdown(wait=True)
    chatter = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert [m for m in chatter if "executed successfully" in m or "Running job" in m] == []
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
