"""FAQ entries: the schema and the loader.

Entries are YAML files under ``knowledge_base/entries/`` (one file per topic, a list of entries
each). They are validated on load; an error names the file and the entry.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator

from knowledge_base.datafile import read_yaml_list

ENTRIES_DIR = Path(__file__).resolve().parent / "entries"

#: The id of an entry written by the agency (a new entry, a spreadsheet row): lower-case Latin
#: letters, digits and hyphens (it appears in URLs, the NLU's intent names and the exports).
ENTRY_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_ID = 64


class KBEntry(BaseModel):
    id: str
    topic: str
    #: Life situation (жизненная ситуация) the entry belongs to.
    life_situation: str
    question: str
    #: Other ways citizens ask the same thing, including synonyms and colloquial words.
    phrasings: list[str] = Field(default_factory=list)
    #: Synonyms that retrieval should treat as equal (прописка = регистрация).
    synonyms: list[str] = Field(default_factory=list)
    #: For public comments: 1-2 sentences, offering to continue in private messages.
    short_answer: str
    full_answer: str
    department: str
    #: When the need cannot be met: why, and (if known) when it will be.
    cannot_because: str | None = None
    available_when: str | None = None
    #: The file the entry was loaded from (for error messages); not part of the data.
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def why_and_when(self) -> str:
        """Why the need cannot be met now and when it will be, as one text (empty if it can)."""
        return " ".join(text.strip() for text in (self.cannot_because, self.available_when) if text)

    @field_validator("id", "question", "short_answer", "full_answer", "department", "topic")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("cannot_because", "available_when")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """An empty «why» or «when» (a cleared form field) means there is none."""
        return value.strip() or None if value is not None else None


class KBLoadError(ValueError):
    pass


def load_entries(directory: Path = ENTRIES_DIR) -> list[KBEntry]:
    """Load and validate every ``*.yaml`` file of entries in ``directory``."""
    entries: list[KBEntry] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        items = read_yaml_list(path, "entries", error=KBLoadError)
        for index, item in enumerate(items):
            try:
                entry = KBEntry.model_validate(item)
            except ValidationError as exc:
                ident = (
                    item.get("id", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
                )
                raise KBLoadError(f"{path}: entry {ident}: {exc}") from exc
            if entry.id in seen:
                raise KBLoadError(f"{path}: entry id {entry.id!r} already used in {seen[entry.id]}")
            seen[entry.id] = path
            entry._source = path
            entries.append(entry)
    return entries
