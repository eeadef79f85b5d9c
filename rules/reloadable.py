"""A value loaded from data files and loaded again when one of them changes on disk.

The response rules, the agency profile and the moderation rules are edited in the admin UI
(which writes their YAML files) while the web app, the citizen bot, the phone robot and any
number of ``otklik worker`` processes use them. Each of those holds a ``Reloadable`` instead of
the loaded object and asks it for the current value when it needs one: the files' size,
modification time and inode are compared on each ``get`` (a few ``stat`` calls, about a
microsecond each), so an edit reaches every process that reads the same files with the next
event, not after a restart. A file that no longer loads (an edit by hand gone wrong) leaves the
last good value in use and is logged once; it is tried again when it changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from rules.errors import RulesFileError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: (path, inode, size, mtime in ns) of each file; None for a file that does not exist.
Fingerprint = tuple[tuple[str, int, int, int] | None, ...]


def _fingerprint(paths: Sequence[Path]) -> Fingerprint:
    found: list[tuple[str, int, int, int] | None] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            found.append(None)
            continue
        found.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class Reloadable(Generic[T]):
    """``loader()`` over ``paths``; ``get`` gives the value for the files as they are now."""

    def __init__(self, loader: Callable[[], T], paths: Sequence[Path]) -> None:
        self._loader = loader
        self._paths = tuple(paths)
        self._lock = threading.Lock()
        self._seen = _fingerprint(self._paths)
        self._value = loader()  # the first load fails loudly: there is nothing to fall back on
        self._failed: Fingerprint | None = None
        #: Values loaded so far (1 after the first load); caches derived from the value compare it.
        self.generation = 1

    @classmethod
    def fixed(cls, value: T) -> Reloadable[T]:
        """A value that never changes (tests, tools over an object built in memory)."""
        return cls(lambda: value, ())

    @property
    def paths(self) -> tuple[Path, ...]:
        return self._paths

    def get(self) -> T:
        """The current value, loaded again first if a file changed since the last load."""
        if not self._paths:
            return self._value
        now = _fingerprint(self._paths)
        if now == self._seen or now == self._failed:
            return self._value
        with self._lock:
            if now != self._seen:
                self._load(now)
        return self._value

    def reload(self) -> T:
        """Load now whatever the files say (after a save in this process); raises if they do
        not load, keeping the previous value."""
        with self._lock:
            now = _fingerprint(self._paths)
            self._value = self._loader()
            self._seen, self._failed = now, None
            self.generation += 1
        return self._value

    def _load(self, now: Fingerprint) -> None:
        try:
            value = self._loader()
        except RulesFileError as exc:
            if now != self._failed:
                log.error("%s; keeping the rules loaded before", exc)
            self._failed = now
            return
        self._value, self._seen, self._failed = value, now, None
        self.generation += 1
        log.info("reloaded %s", ", ".join(p.name for p in self._paths))


def as_reloadable(value: T | Reloadable[T]) -> Reloadable[T]:
    """``value`` itself if it is a ``Reloadable``, else one that always gives ``value``."""
    if isinstance(value, Reloadable):
        return value
    return Reloadable.fixed(value)
