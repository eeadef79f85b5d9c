"""How long the agency has to answer an application (``rules/applications.yaml``).

Read from the rules directory (``OTKLIK_RULES_DIR``); a directory without the file uses the
one shipped here. The file is read again when it changes, so an edit needs no restart.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rules.datafile import CachedFile, load_model_file
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
    rules = load_model_file(path, ApplicationRules)
    bad = {k: v for k, v in rules.services.items() if not 1 <= v <= 3650}
    if bad:
        raise RulesFileError(f"{path}: services: days must be 1..3650, got {bad}")
    return rules


_FILE = CachedFile(FILE_NAME, SHIPPED, load_application_rules)


def application_rules(rules_dir: Path) -> ApplicationRules:
    """The rules of ``rules_dir`` (or the shipped ones), re-read when the file changes."""
    return _FILE.get(rules_dir)
