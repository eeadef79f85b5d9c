"""The search index of the knowledge base, cached on disk between processes.

Building a ``KnowledgeBase`` from 250+ entries takes most of a second (pymorphy3 parses every
distinct word of the entries); a command such as ``otklik kb search`` would pay that on each
run. ``load_cached`` keeps the built index in a file and reads it back instead.

**Key.** The file is named after a SHA-256 of everything the index is made of: the directory
read, the name and bytes of each ``*.yaml`` entry file in it, the search settings and data
files (``search.yaml``, ``synonyms.yaml``, ``lexicon.yaml``, ``not_our_topic.yaml``,
``calibration.yaml``), the source of the modules that build the index, and the Python and
pymorphy3 versions. Any edit of an entry (by hand, by the admin UI, by an import) or an
upgrade of the code gives a new key, so a stale index is never read; it is rebuilt instead.

**Safety.** A missing, truncated or corrupt file, or one of another format, is rebuilt and
replaced. The file is written to a temporary name and renamed into place, so a reader sees
the old index or the new one whole, and two processes writing at once do no harm. The cache is
a pickle, which can run code when read: the directory is created private (``0700``) and a
file is read only if it belongs to the current user and nobody else can write it or its
directory. Only the newest few index files are kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import uuid
from pathlib import Path

from knowledge_base.entries import ENTRIES_DIR
from knowledge_base.search import (
    CALIBRATION_FILE,
    LEXICON_FILE,
    NOT_OUR_TOPIC_FILE,
    SEARCH_CONFIG_FILE,
    SYNONYMS_FILE,
    KnowledgeBase,
)

log = logging.getLogger(__name__)

#: Bumped when the layout of the cached file changes.
FORMAT = b"otklik-kb-index-1"
PREFIX = "kb-index-"
SUFFIX = ".pickle"
#: Index files kept in the cache directory (the seed's and an agency's, a recent version...).
KEEP = 4

HERE = Path(__file__).resolve().parent
#: The data files and the modules whose content shapes the index.
DATA_FILES = (SEARCH_CONFIG_FILE, SYNONYMS_FILE, LEXICON_FILE, NOT_OUR_TOPIC_FILE, CALIBRATION_FILE)
CODE_FILES = tuple(
    HERE / name
    for name in ("search.py", "entries.py", "russian.py", "translit.py", "entities.py", __file__)
)


def configured_cache_dir() -> Path:
    """The cache directory of the settings: ``OTKLIK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/otklik``, else ``~/.cache/otklik``."""
    from core.config import get_settings

    return get_settings().effective_cache_dir


def _code_version() -> bytes:
    try:
        from importlib.metadata import version

        morph = version("pymorphy3")
    except Exception:
        morph = "?"
    return f"{sys.version}|pymorphy3 {morph}".encode()


def index_key(directory: Path) -> str:
    """The content hash naming the index built from ``directory`` (see the module docstring)."""
    digest = hashlib.sha256(FORMAT)
    digest.update(_code_version())
    digest.update(str(directory.resolve()).encode())
    for label, paths in (("code", CODE_FILES), ("data", DATA_FILES)):
        for path in paths:
            digest.update(f"\0{label}:{Path(path).name}\0".encode())
            digest.update(_read_or_empty(Path(path)))
    for path in sorted(directory.glob("*.yaml")):
        if path.is_file():
            digest.update(f"\0entry:{path.name}\0".encode())
            digest.update(_read_or_empty(path))
    return digest.hexdigest()


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b"\0missing"


def _trusted(path: Path) -> bool:
    """The file and its directory belong to us and nobody else may write them."""
    try:
        for item in (path.parent, path):
            info = item.lstat()
            if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
                return False
            if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
    except OSError:
        return False
    return True


def read_index(path: Path, key: str) -> KnowledgeBase | None:
    """The index stored in ``path`` for ``key``; None when absent, foreign or unreadable."""
    if not path.exists():
        return None
    if not _trusted(path):
        log.warning("KB index cache %s is not private to this user: not read", path)
        return None
    try:
        with path.open("rb") as stream:
            if stream.read(len(FORMAT)) != FORMAT:
                raise ValueError("not an index file of this format")
            stored_key, kb = pickle.load(stream)
        if stored_key != key or not isinstance(kb, KnowledgeBase):
            raise ValueError("the file holds another index")
    except Exception as exc:
        log.warning("KB index cache %s unreadable (%s): rebuilding", path, exc)
        return None
    return kb


def write_index(path: Path, key: str, kb: KnowledgeBase) -> None:
    """Store ``kb`` in ``path`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(FORMAT)
            pickle.dump((key, kb), stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _prune(cache_dir: Path, keep: Path) -> None:
    try:
        files = sorted(
            (p for p in cache_dir.glob(f"{PREFIX}*{SUFFIX}") if p != keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in files[KEEP - 1 :]:
            old.unlink(missing_ok=True)
    except OSError:  # a file removed by another process meanwhile: nothing to do
        pass


def load_cached(directory: Path = ENTRIES_DIR, *, cache_dir: Path | None = None) -> KnowledgeBase:
    """The ``KnowledgeBase`` of ``directory``: from the cache when its key matches, else
    built with ``KnowledgeBase.load`` and stored. A cache that cannot be written is logged
    and skipped: the index is still returned."""
    cache_dir = cache_dir if cache_dir is not None else configured_cache_dir()
    key = index_key(directory)
    path = cache_dir / f"{PREFIX}{key}{SUFFIX}"
    kb = read_index(path, key)
    if kb is not None:
        return kb
    kb = KnowledgeBase.load(directory)
    try:
        write_index(path, key, kb)
        _prune(cache_dir, path)
    except OSError as exc:
        log.warning("KB index cache not written to %s: %s", cache_dir, exc)
    return kb
