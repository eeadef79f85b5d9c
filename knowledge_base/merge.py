"""Three-way merge of one KB entry, field by field, and a unified diff of two versions.

``base`` is the shipped entry an agency's override was based on, ``ours`` the override,
``theirs`` the entry as now shipped. A field changed on one side only takes that side; one
changed the same way on both is taken; one changed differently on both is a conflict, left to
a person (``ours`` stays in the merged entry until then).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from knowledge_base.entries import KBEntry

#: The entry's fields in the order people read them.
FIELDS: tuple[str, ...] = tuple(KBEntry.model_fields)


def entry_data(entry: KBEntry) -> dict[str, Any]:
    """The entry's fields as plain data (what is stored, hashed, merged and compared)."""
    return entry.model_dump(mode="json")


def content_hash(data: dict[str, Any]) -> str:
    """A SHA-256 of the entry's fields (absent and None alike): which shipped version it is."""
    canonical = {name: data.get(name) for name in FIELDS}
    text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    ours: Any
    theirs: Any


@dataclass
class EntryMerge:
    entry_id: str
    merged: dict[str, Any]
    #: Fields taken from the new shipped entry (changed there, untouched by the agency).
    taken: list[str] = field(default_factory=list)
    conflicts: list[FieldConflict] = field(default_factory=list)
    #: The shipped entry is gone: the agency's version stays; a person decides.
    removed: bool = False

    @property
    def clean(self) -> bool:
        return not self.conflicts and not self.removed


def merge_entry(
    base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any] | None
) -> EntryMerge:
    entry_id = str(ours.get("id") or base.get("id"))
    if theirs is None:
        return EntryMerge(entry_id, dict(ours), removed=True)
    merged: dict[str, Any] = {}
    result = EntryMerge(entry_id, merged)
    for name in FIELDS:
        b, o, t = base.get(name), ours.get(name), theirs.get(name)
        if o == t or t == b:
            merged[name] = o
        elif o == b:
            merged[name] = t
            result.taken.append(name)
        else:
            merged[name] = o
            result.conflicts.append(FieldConflict(name, b, o, t))
    return result


def _lines(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    lines: list[str] = []
    for name in FIELDS:
        value = data.get(name)
        if value in (None, [], ""):
            continue
        if isinstance(value, list):
            lines.append(f"{name}:\n")
            lines.extend(f"  - {item}\n" for item in value)
        else:
            text = str(value).splitlines() or [""]
            lines.append(f"{name}: {text[0]}\n")
            lines.extend(f"  {rest}\n" for rest in text[1:])
    return lines


def unified_diff(
    old: dict[str, Any] | None, new: dict[str, Any] | None, old_label: str, new_label: str
) -> str:
    """A unified diff of two versions of an entry, one field (or list item) a line."""
    return "".join(
        difflib.unified_diff(_lines(old), _lines(new), fromfile=old_label, tofile=new_label, n=2)
    )
