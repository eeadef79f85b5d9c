"""How long the agency has to answer an application (``rules/applications.yaml``).

Read from the rules directory (``OTKLIK_RULES_DIR``); a directory without the file uses the
one shipped here. The file is read again when it changes, so an edit needs no restart.
"""

from __future__ import annotations

from pathlib import Path
from threading import Lock

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rules.errors import RulesFileError

FILE_NAME = "applications.yaml"
SHIPPED = Path(__file__).resolve().parent / FILE_NAME


class ApplicationRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Calendar days from submission to a final answer.
    answer_within_days: int = Field(default=30, ge=1, le=3650)
    #: The same per service id, where it differs.
    services: dict[str, int] = Field(default_factory=dict)

    def days_for(self, service: str) -> int:
        return self.services.get(service, self.answer_within_days)


def load_application_rules(path: Path) -> ApplicationRules:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        rules = ApplicationRules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RulesFileError(f"{path}: {where}: {first['msg']}") from exc
    bad = {k: v for k, v in rules.services.items() if not 1 <= v <= 3650}
    if bad:
        raise RulesFileError(f"{path}: services: days must be 1..3650, got {bad}")
    return rules


_cache: dict[Path, tuple[tuple[int, int], ApplicationRules]] = {}
_lock = Lock()


def application_rules(rules_dir: Path) -> ApplicationRules:
    """The rules of ``rules_dir`` (or the shipped ones), re-read when the file changes."""
    path = rules_dir / FILE_NAME
    if not path.exists():
        path = SHIPPED
    stat = path.stat()
    mtime = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    rules = load_application_rules(path)
    with _lock:
        _cache[path] = (mtime, rules)
    return rules
