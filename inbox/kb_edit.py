"""Editing one knowledge-base entry's answer texts: the action behind the admin page's
«Сохранить» (``/ui/admin/kb/{id}``), kept out of the route so that a command or the API can
make the same change with the same checks.

Entries are read from and written to the agency's directory (``Runtime.kb``, setting
``kb_dir``): the first save copies the shipped entries there, so the package's files stay as
shipped. The edited file must load together with its siblings before it is written; it is
replaced atomically (another process reading the directory sees the old file or the new one),
and the knowledge base is rebuilt from the directory at once, so the citizen bot, the phone
robot, the NLU and the suggestions answer with the new text from the next message on. Should
the rebuild fail, the old file is put back and the previous knowledge base stays in use.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from pydantic import ValidationError

from inbox import audit
from inbox.models import Operator
from inbox.runtime import Runtime
from knowledge_base.datafile import DataFileError
from knowledge_base.entries import KBEntry, KBLoadError, load_entries
from knowledge_base.store import heading_comment, write_atomically

#: The answer texts an edit may change; the entry's other fields stay as they are.
TEXT_FIELDS = ("question", "short_answer", "full_answer", "cannot_because", "available_when")


class EntryNotFound(LookupError):
    """No entry with this id in the knowledge base's directory."""


class EntryNotSaved(ValueError):
    """The edit was refused; the message (Russian) says why, for the administrator."""


def find_entry(directory: Path, entry_id: str) -> tuple[Path, list[dict[str, object]], int]:
    """The file holding ``entry_id``, its items and the entry's index among them."""
    for path in sorted(directory.glob("*.yaml")):
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for index, item in enumerate(items):
            if isinstance(item, dict) and item.get("id") == entry_id:
                return path, items, index
    raise EntryNotFound(entry_id)


def check_entries(path: Path, text: str) -> str | None:
    """Load the whole directory with ``path`` replaced by ``text``, in a scratch copy; the
    error, if any, naming the file as the administrator knows it."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for sibling in path.parent.glob("*.yaml"):
            shutil.copy(sibling, folder / sibling.name)
        (folder / path.name).write_text(text, encoding="utf-8")
        try:
            load_entries(folder)
        except KBLoadError as exc:
            return str(exc).replace(str(folder / path.name), path.name).replace(scratch, "")
    return None


def save_entry_texts(
    runtime: Runtime, by: Operator, entry_id: str, texts: dict[str, str | None]
) -> Path:
    """Set the answer texts of ``entry_id`` (a None value removes an optional text), rebuild
    the knowledge base and audit ``kb_entry_changed``; the file written. Raises
    ``EntryNotFound`` or ``EntryNotSaved`` (nothing written then)."""
    unknown = set(texts) - set(TEXT_FIELDS)
    if unknown:
        raise EntryNotSaved(f"эти поля так не меняются: {', '.join(sorted(unknown))}")
    kb = runtime.kb
    _, items, index = find_entry(kb.entries_dir, entry_id)
    merged = {**items[index], **texts}
    if merged.get("available_when") and not merged.get("cannot_because"):
        raise EntryNotSaved("сначала напишите, почему нельзя сейчас, потом — когда будет.")
    try:  # before anything is copied or written
        KBEntry.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise EntryNotSaved(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
    with kb.editing() as directory:
        path, items, index = find_entry(directory, entry_id)
        items[index] = {k: v for k, v in {**items[index], **texts}.items() if v is not None}
        backup = path.read_text(encoding="utf-8")
        # safe_dump drops comments: the file's heading comment is kept, those between entries
        # are lost (in the agency's copy; the shipped file is never written).
        text = heading_comment(backup) + yaml.safe_dump(
            items, allow_unicode=True, sort_keys=False, width=100
        )
        error = check_entries(path, text)
        if error:
            raise EntryNotSaved(error)
        write_atomically(path, text)
        try:
            kb.reload()
        except (KBLoadError, DataFileError) as exc:
            write_atomically(path, backup)
            raise EntryNotSaved(str(exc)) from exc
    with runtime.factory() as session:
        audit.record(
            session, "kb_entry_changed", runtime.clock.now(), operator_id=by.id,
            actor=by.login, entry=entry_id, file=path.name,
        )  # fmt: skip
        session.commit()
    return path
