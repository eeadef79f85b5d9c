"""Password checks off the request threads: a few at a time, at a low CPU priority.

An argon2 verification costs about a quarter of a second of every core (``parallelism=4``
lanes, each a thread). A flood of logins, even one the login throttle holds to its limits
(20 checks per address per quarter of an hour), could otherwise take the whole CPU the
operators' pages need: measured with ``scripts/bench/abuse.py``, ``/ui/inbox`` went from
tens of milliseconds to seconds (docs/performance.md, section 5). So checks run on a small
pool of their own whose threads (and the lanes argon2 starts from them, which inherit it)
have a lower scheduling priority (``nice`` +10, Linux): they take only the CPU nothing else
wants. At most ``at_once`` checks are admitted; one more is turned away at once (the login
page answers "busy"), so no request thread waits in a queue.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from inbox.auth import check_password

log = logging.getLogger(__name__)

#: How much nicer than the web process the checking threads are (Linux ``nice``).
NICENESS = 10


def default_at_once() -> int:
    """Half the CPU cores this process may use, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 2
    return max(1, cores // 2)


def _lower_priority() -> None:
    """Run in each checking thread as it starts: Linux keeps ``nice`` per thread."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: normal priority
        log.debug("password checks keep their priority: %s", exc)


class PasswordChecks:
    def __init__(self, at_once: int) -> None:
        self.at_once = max(1, at_once)
        self._admitted = threading.BoundedSemaphore(self.at_once)
        self._pool = ThreadPoolExecutor(
            max_workers=self.at_once, thread_name_prefix="otklik-password",
            initializer=_lower_priority,
        )  # fmt: skip

    def admit(self) -> bool:
        """Take a checking slot; False at once when all are taken. ``release`` it after."""
        return self._admitted.acquire(blocking=False)

    def release(self) -> None:
        self._admitted.release()

    def verify(self, password_hash: str | None, password: str) -> bool:
        """``check_password`` on the pool (for a caller holding a slot)."""
        return self._pool.submit(check_password, password_hash, password).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
