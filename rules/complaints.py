"""Which topic a citizen's free-text message is about (``rules/complaints.yaml``).

Read from the rules directory (``OTKLIK_RULES_DIR``); a directory without the file uses the
one shipped here. Used by the citizen bot to offer +1 to an open shared complaint
(``inbox.complaints.find_match_in_text``).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rules.datafile import CachedFile, load_model_file
from rules.errors import RulesFileError

FILE_NAME = "complaints.yaml"
SHIPPED = Path(__file__).resolve().parent / FILE_NAME


class ComplaintRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Topic (a service id) → the starts of words that name it.
    topics: dict[str, list[str]] = Field(default_factory=dict)

    @cached_property
    def _patterns(self) -> dict[str, re.Pattern[str]]:
        return {
            topic: re.compile(r"\b(?:" + "|".join(re.escape(w.casefold()) for w in words) + ")")
            for topic, words in self.topics.items()
            if words
        }

    def topics_of(self, text: str) -> list[str]:
        """The topics whose words the text has (in the file's order)."""
        folded = text[:4000].casefold().replace("ё", "е")
        return [topic for topic, pattern in self._patterns.items() if pattern.search(folded)]


def load_complaint_rules(path: Path) -> ComplaintRules:
    rules = load_model_file(path, ComplaintRules)
    empty = [t for t, words in rules.topics.items() if not all(w.strip() for w in words)]
    if empty:
        raise RulesFileError(f"{path}: topics: {empty[0]}: an empty word")
    return rules


_FILE = CachedFile(FILE_NAME, SHIPPED, load_complaint_rules)


def complaint_rules(rules_dir: Path | None) -> ComplaintRules:
    """The rules of ``rules_dir`` (or the shipped ones), re-read when the file changes."""
    return _FILE.get(rules_dir)
