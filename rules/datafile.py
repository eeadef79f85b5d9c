"""One way to read a rules file: YAML validated as a pydantic model, every failure a
``RulesFileError`` that names the file and the field; and a per-file cache that reads the file
again when it changes (for rules an administrator may edit while the service runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from threading import Lock
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rules.errors import RulesFileError

M = TypeVar("M", bound=BaseModel)


def load_model_file(path: Path, model: type[M]) -> M:
    """``path`` read as YAML (an empty file is an empty mapping) and validated as ``model``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(f"{path}: {describe(exc, data)}") from exc


def describe(exc: ValidationError, data: Any) -> str:
    """The first error as ``field.path (id 'x'): message``: the dotted location in the file,
    and the ``id`` of the innermost list item on the way when it has one (a rule, a
    service), since an administrator finds a rule by its id rather than by its index."""
    first = exc.errors()[0]
    loc = list(first["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    named = ""
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict) and node.get("id") is not None:
            named = f" (id {node['id']!r})"
    return f"{where}{named}: {first['msg']}"


class CachedFile(Generic[M]):
    """``load(path)`` of a rules directory's ``file_name`` (the shipped file where the directory
    has none), loaded again when the file's size or time changes."""

    def __init__(self, file_name: str, shipped: Path, load: Callable[[Path], M]) -> None:
        self.file_name = file_name
        self.shipped = shipped
        self._load = load
        self._cache: dict[Path, tuple[tuple[int, int], M]] = {}
        self._lock = Lock()

    def get(self, rules_dir: Path | None) -> M:
        path = rules_dir / self.file_name if rules_dir is not None else self.shipped
        if not path.exists():
            path = self.shipped
        stat = path.stat()
        seen = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == seen:
                return cached[1]
        value = self._load(path)
        with self._lock:
            self._cache[path] = (seen, value)
        return value
