"""Things the pages share: the knowledge base, the readability bar and an entry's edit form.

The knowledge base is the runtime's shared provider (``Runtime.kb``): the same index the
citizen bot and the phone robot answer from, reloaded after an entry is edited. The
readability bar supervisors edit is stored in ``data_dir/readability.yaml``; until one is
saved, the knowledge base's default bar applies.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi import Request

from inbox.web.deps import get_runtime
from knowledge_base.readability import ReadabilityBar, load_bar
from knowledge_base.search import KnowledgeBase


def knowledge_base(request: Request) -> KnowledgeBase:
    """The current knowledge base (call it from a worker thread: it may rebuild the index)."""
    return get_runtime(request).kb.get()


def bar_path(request: Request) -> Path:
    return get_runtime(request).settings.data_dir / "readability.yaml"


def readability_bar(request: Request) -> ReadabilityBar:
    path = bar_path(request)
    return load_bar(path) if path.exists() else load_bar()


def save_bar(request: Request, bar: ReadabilityBar) -> None:
    path = bar_path(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(bar.model_dump(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def answer_texts(
    question: str,
    short_answer: str,
    full_answer: str,
    cannot_because: str | None,
    available_when: str | None,
) -> dict[str, str | None]:
    """The answer texts of a knowledge base entry's edit form, trimmed; a blank «почему нельзя»
    or «когда будет» is ``None`` (the field is cleared)."""
    return {
        "question": question.strip(),
        "short_answer": short_answer.strip(),
        "full_answer": full_answer.strip(),
        "cannot_because": (cannot_because or "").strip() or None,
        "available_when": (available_when or "").strip() or None,
    }
