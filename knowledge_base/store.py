"""Where the agency's KB entries live, and the one reloadable knowledge base of a process.

**The directory.** The entries shipped in the package (``knowledge_base/entries/``) are the
seed. The agency's own copy lives in ``kb_dir`` (setting ``OTKLIK_KB_DIR``, by default
``data_dir/knowledge_base``). While ``kb_dir`` holds no ``*.yaml`` file, everything reads the
seed; the first edit in the admin UI copies the seed there (copy-on-first-write) and edits the
copy. The package's files are never written, so a package upgrade never meets an agency's
edits (and new shipped entries do not appear in a copy made earlier: see
docs/knowledge-base.md).

**The provider.** ``KnowledgeBaseProvider`` gives every consumer of a process (operator UI
suggestions, citizen bot, phone robot, embedded NLU) the same ``KnowledgeBase``. Before each
use it compares a fingerprint of the directory (file names, sizes, modification times: about
0.1 ms) with the one the current index was built from; when they differ, the first thread to
notice rebuilds (0.2-0.3 s) while the others go on with the previous index, and the new one is
swapped in at once. So an edit made by this process (which reloads eagerly, see
``reload``), by another server process sharing the directory, or by hand, is what the bot
answers with from the next message on. A file that does not load is logged and the previous
index stays in use until the files change again.

**Overrides.** The agency's reviewed versions of entries (drafts, review and publishing: see
inbox/kb_workflow.py) live in the database, apart from the files. The provider is given an
``Overlay``: a cheap ``key()`` (checked at most every ``overlay_poll`` seconds) and the
published ``entries()``, which replace the entries of the same id (or add new ones) in the
index. So a shipped file's upgrade reaches every entry the agency did not override, and
``otklik kb merge`` brings it to the ones it did.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from knowledge_base.datafile import DataFileError
from knowledge_base.entries import ENTRIES_DIR, KBEntry, KBLoadError, load_entries
from knowledge_base.search import KnowledgeBase, load_search_config, load_synonym_groups

log = logging.getLogger(__name__)

#: The entries shipped with the package: read while the agency has no copy of its own.
SEED_DIR = ENTRIES_DIR

#: (directory, ((file name, inode, size, mtime in ns), ...)): changes whenever a file does
#: (the inode too: edits replace the file, which shows even where timestamps are coarse).
Fingerprint = tuple[str, tuple[tuple[str, int, int, int], ...]]


class OverlayError(KBLoadError):
    """The overrides could not be read (the database is away): tried again on the next use."""


class Overlay(Protocol):
    """The agency's published entries kept apart from the files (the database)."""

    def key(self) -> object:
        """Changes whenever ``entries`` would (cheap: checked before answering)."""

    def entries(self) -> list[dict[str, Any]]:
        """The fields of each published entry (one per id)."""


#: The key of a published version that withdraws the entry («снять с публикации»).
RETIRED = "retired"


def overlaid(base: list[KBEntry], items: list[dict[str, Any]]) -> list[KBEntry]:
    """``base`` with each entry of ``items`` in place of the one of the same id (or added at
    the end); an item marked ``retired`` removes the entry. An item that does not validate is
    logged and skipped: the base entry stays."""
    entries: dict[str, KBEntry | None] = {entry.id: entry for entry in base}
    for item in items:
        if item.get(RETIRED):
            entries[str(item.get("id"))] = None
            continue
        try:
            entry = KBEntry.model_validate(item)
        except ValueError:
            log.exception("knowledge base: override %r skipped", item.get("id"))
            continue
        entries[entry.id] = entry
    return [entry for entry in entries.values() if entry is not None]


def _yaml_names(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as found:
            return sorted(e.name for e in found if e.name.endswith(".yaml") and e.is_file())
    except FileNotFoundError:
        return []


def has_entries(directory: Path) -> bool:
    return bool(_yaml_names(directory))


def active_dir(kb_dir: Path) -> Path:
    """The directory to read: the agency's ``kb_dir`` once it has entries, else the seed."""
    return kb_dir if has_entries(kb_dir) else SEED_DIR


def _yaml_stats(directory: Path) -> tuple[tuple[str, int, int, int], ...]:
    """(name, inode, size, mtime in ns) of each ``*.yaml`` file, by name: one ``scandir``,
    no ``Path`` objects (the provider takes this before every use of the index)."""
    files: list[tuple[str, int, int, int]] = []
    try:
        with os.scandir(directory) as found:
            for entry in found:
                if not entry.name.endswith(".yaml"):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    stat = entry.stat()
                except FileNotFoundError:  # replaced or removed right now: the next check sees it
                    continue
                files.append((entry.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except FileNotFoundError:
        return ()
    files.sort()
    return tuple(files)


def fingerprint(directory: Path) -> Fingerprint:
    return str(directory), _yaml_stats(directory)


def active_fingerprint(kb_dir: Path | None) -> Fingerprint:
    """The fingerprint of ``active_dir(kb_dir)`` (the seed's when ``kb_dir`` is None), with
    ``kb_dir`` read once: it is both the test of having entries and the fingerprint."""
    if kb_dir is not None:
        files = _yaml_stats(kb_dir)
        if files:
            return str(kb_dir), files
    return fingerprint(SEED_DIR)


def prepare_writable(kb_dir: Path) -> Path:
    """``kb_dir``, holding a copy of the seed if it had no entries yet (copy-on-first-write).

    The copy is made in a sibling directory and renamed into place, so no reader ever sees a
    half-copied knowledge base and, of two processes doing it at once, one wins and the
    other's copy is dropped. Where ``kb_dir`` cannot be replaced (a mount point, or it holds
    other files), the files are copied one by one, none overwriting a file already there;
    a reader may then see part of the entries for a moment.
    """
    if has_entries(kb_dir):
        return kb_dir
    kb_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = kb_dir.parent / f".{kb_dir.name}.{uuid.uuid4().hex}.tmp"
    shutil.copytree(SEED_DIR, scratch, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    try:
        scratch.rename(kb_dir)  # POSIX: fails if kb_dir is a non-empty directory
        log.info("knowledge base: copied the shipped entries to %s", kb_dir)
    except OSError:
        if not has_entries(kb_dir):  # not another process's copy: a mount point or the like
            kb_dir.mkdir(parents=True, exist_ok=True)
            for name in _yaml_names(scratch):
                _link_new(scratch / name, kb_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return kb_dir


def _link_new(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless ``target`` exists (atomically: never overwrites)."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    shutil.copyfile(source, temporary)
    try:
        os.link(temporary, target)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def heading_comment(text: str) -> str:
    """The comment lines a YAML file starts with (``# Мусор: вывоз, свалки...``): kept when
    the file is written again, since ``yaml.safe_dump`` drops comments."""
    lines = text.splitlines(keepends=True)
    count = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return "".join(lines[:count])


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new, whole."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class KnowledgeBaseProvider:
    """The current ``KnowledgeBase`` of the agency's entries; see the module docstring.

    ``generation`` counts the indexes built (1 after the first load); caches derived from the
    knowledge base (the phone robot's per-topic indexes) compare it, or the object ``get``
    returns, to know when to drop what they derived.
    """

    def __init__(
        self,
        kb_dir: Path | None,
        *,
        loader: Callable[[Path], KnowledgeBase] = KnowledgeBase.load,
        fixed: KnowledgeBase | None = None,
        overlay: Overlay | None = None,
        overlay_poll: float = 1.0,
    ) -> None:
        self.kb_dir = kb_dir
        self._loader = loader
        self.overlay = overlay
        self._overlay_poll = overlay_poll
        self._overlay_checked = 0.0
        self._overlay_key: object = None
        self._kb = fixed
        self._built_from: Any = None
        #: The fingerprint of files that failed to load (not retried until they change).
        self._failed: Any = None
        self.generation = 0 if fixed is None else 1
        self._build_lock = threading.Lock()
        self._edit_lock = threading.RLock()

    @classmethod
    def fixed(cls, kb: KnowledgeBase) -> KnowledgeBaseProvider:
        """A provider that always gives ``kb`` (tests, tools over an in-memory base)."""
        return cls(None, fixed=kb)

    @property
    def entries_dir(self) -> Path:
        """The directory read now (the seed until the agency's directory has entries)."""
        return SEED_DIR if self.kb_dir is None else active_dir(self.kb_dir)

    def get(self) -> KnowledgeBase:
        """The current knowledge base, rebuilt first if the entries changed on disk.

        Only the very first call (nothing to fall back on) waits for a build another thread
        is doing; later ones keep the previous index while the new one is built.
        """
        kb = self._kb
        if self.kb_dir is None and kb is not None:
            return kb
        current = self._state()
        if kb is not None:
            if current in (self._built_from, self._failed):
                return kb
            if not self._build_lock.acquire(blocking=False):
                return kb  # another thread is rebuilding: answer with the previous index
        else:
            self._build_lock.acquire()
        try:
            if self._kb is not None and self._state() == self._built_from:
                return self._kb  # another thread has just built it
            try:
                return self._build()
            except (KBLoadError, DataFileError) as exc:
                if self._kb is None:
                    raise
                # Files that fail wait for a change; the database is asked again next time.
                self._failed = None if isinstance(exc, OverlayError) else current
                log.exception("knowledge base not reloaded; the previous one stays in use")
                return self._kb
        finally:
            self._build_lock.release()

    def _state(self) -> Any:
        """The directory's fingerprint, with the overlay's key when there is an overlay."""
        files = active_fingerprint(self.kb_dir)
        if self.overlay is None:
            return files
        now = time.monotonic()
        if now - self._overlay_checked >= self._overlay_poll:
            try:
                self._overlay_key = self.overlay.key()
            except Exception:  # the database is away: keep answering with what we have
                log.exception("knowledge base: overrides not checked")
            self._overlay_checked = now
        return files, self._overlay_key

    def _overlay_items(self) -> list[dict[str, Any]]:
        """The published overrides; on a database error the previous index stays in use (or,
        on the very first build, the files alone are answered from)."""
        if self.overlay is None:
            return []
        try:
            return self.overlay.entries()
        except Exception as exc:
            if self._kb is not None:
                raise OverlayError(f"overrides not read: {exc}") from exc
            log.exception("knowledge base: overrides not read; the files alone are used")
            return []

    def reload(self) -> KnowledgeBase:
        """Build the index now from the files and use it from the next ``get`` on.

        Raises ``KBLoadError`` (or ``DataFileError``) when the files do not load; the
        previous index then stays in use.
        """
        with self._build_lock:
            return self._build()

    def _build(self) -> KnowledgeBase:
        """Build from the files (the build lock is held). The fingerprint is taken first: a
        file changed during the build makes the next ``get`` build once more."""
        directory = self.entries_dir
        self._overlay_checked = 0.0  # read the overlay's key now
        taken = self._state()
        items = self._overlay_items()
        if items:
            kb = KnowledgeBase(
                overlaid(load_entries(directory), items),
                config=load_search_config(),
                synonym_groups=load_synonym_groups(),
            )
        else:
            kb = self._loader(directory)
        self._kb, self._built_from, self._failed = kb, taken, None
        self.generation += 1
        log.info("knowledge base loaded from %s (generation %d)", directory, self.generation)
        return kb

    def writable_dir(self) -> Path:
        """The directory edits go to, with the seed copied there on the first edit."""
        if self.kb_dir is None:
            raise RuntimeError("this knowledge base has no directory to edit")
        return prepare_writable(self.kb_dir)

    @contextmanager
    def editing(self) -> Iterator[Path]:
        """Serialize edits in this process (read-modify-write of one file); the directory.

        Processes do not lock each other out: two administrators saving the same file at the
        same moment from two processes is not guarded against (the later write wins).
        """
        with self._edit_lock:
            yield self.writable_dir()


def as_provider(kb: KnowledgeBase | KnowledgeBaseProvider) -> KnowledgeBaseProvider:
    return kb if isinstance(kb, KnowledgeBaseProvider) else KnowledgeBaseProvider.fixed(kb)


def configured_kb_dir() -> Path:
    """The ``kb_dir`` of the settings (``OTKLIK_KB_DIR``, ``OTKLIK_DATA_DIR``): what the
    command-line tools read when no directory is given, the same the server reads."""
    from core.config import get_settings

    return get_settings().effective_kb_dir
