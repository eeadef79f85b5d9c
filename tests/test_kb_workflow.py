"""KB authoring on SQLite and PostgreSQL: drafts, four-eyes review, published versions, diff,
the overlay the bot reads, and the three-way merge of shipped upgrades (inbox/kb_workflow.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from core.clock import FrozenClock
from inbox.kb_workflow import (
    Forbidden,
    NotFound,
    WorkflowError,
    approve,
    current_data,
    diff_versions,
    drafts,
    history,
    import_drafts,
    merge_shipped,
    published,
    restore_draft,
    restore_version,
    retire_draft,
    retired_entries,
    return_draft,
    save_draft,
)
from inbox.models import KBRevision, Operator, Role
from inbox.runtime import Runtime
from knowledge_base.merge import content_hash, merge_entry
from knowledge_base.store import SEED_DIR
from tests.helpers.kb import upgrade_shipped


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A copy of the shipped entries as the files the provider reads (to upgrade them)."""
    target = tmp_path / "kb"
    shutil.copytree(SEED_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.fixture
def rt(runtime: Runtime, kb_dir: Path) -> Iterator[Runtime]:
    runtime.kb.kb_dir = kb_dir
    yield runtime


def _op(session: Session, login: str, role: Role) -> Operator:
    op = Operator(login=login, display_name=login, role=role.value)
    session.add(op)
    session.flush()
    return op


@pytest.fixture
def people(rt: Runtime) -> dict[str, Operator]:
    with rt.factory() as session:
        found = {
            "editor": _op(session, "editor", Role.admin),
            "boss": _op(session, "boss", Role.supervisor),
            "oper": _op(session, "oper", Role.operator),
        }
        session.commit()
        for op in found.values():
            session.refresh(op)
            session.expunge(op)
    return found


def _first(rt: Runtime) -> dict[str, object]:
    entry = rt.kb.get().entries[0]
    return entry.model_dump(mode="json")


def _answered(rt: Runtime):  # type: ignore[no-untyped-def]
    """What the bot answers with once the commit is announced (``published``)."""
    published(rt.kb)
    return rt.kb.get()


SIMPLE = "Позвоните нам. Мы поможем в тот же день."


def test_draft_is_not_answered_until_another_person_approves(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    data = _first(rt)
    entry_id = str(data["id"])
    old = rt.kb.get().by_id[entry_id].short_answer
    with rt.factory() as session:
        draft = save_draft(session, rt.kb, people["editor"], {**data, "short_answer": SIMPLE},
                           clock.now())  # fmt: skip
        session.commit()
        assert draft.author == "editor" and draft.base_hash == content_hash(data)
    assert _answered(rt).by_id[entry_id].short_answer == old  # a draft is never answered
    with rt.factory() as session, pytest.raises(Forbidden):
        approve(session, people["editor"], draft.id, clock.now(), None)  # four eyes
    with rt.factory() as session, pytest.raises(Forbidden):
        approve(session, people["oper"], draft.id, clock.now(), None)  # no rights
    with rt.factory() as session:
        published = approve(session, people["boss"], draft.id, clock.now(), None)
        session.commit()
        assert (published.status, published.version, published.reviewer) == ("published", 1, "boss")
        assert published.reviewed_at is not None
    assert _answered(rt).by_id[entry_id].short_answer == SIMPLE
    assert rt.kb.get().answer(str(data["question"])).hit is not None
    with rt.factory() as session, pytest.raises(WorkflowError):
        approve(session, people["boss"], draft.id, clock.now(), None)  # not twice


def test_every_published_version_is_kept_and_diffable(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    data = _first(rt)
    entry_id = str(data["id"])
    for text in (SIMPLE, "Напишите нам. Ответим за день."):
        with rt.factory() as session:
            draft = save_draft(session, rt.kb, people["editor"], {**data, "short_answer": text},
                               clock.now())  # fmt: skip
            approve(session, people["boss"], draft.id, clock.now(), None)
            session.commit()
    with rt.factory() as session:
        versions = [r.version for r in history(session, entry_id) if r.status == "published"]
        assert versions == [1, 2]
        diff = diff_versions(session, rt.kb, entry_id, 1, 2)
        assert f"-short_answer: {SIMPLE}" in diff and "+short_answer: Напишите нам." in diff
        assert "short_answer" in diff_versions(session, rt.kb, entry_id, 0, 1)
        with pytest.raises(WorkflowError):
            diff_versions(session, rt.kb, entry_id, 1, 99)


def test_returned_draft_carries_the_comment_and_a_new_draft_replaces_it(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    data = _first(rt)
    with rt.factory() as session:
        draft = save_draft(session, rt.kb, people["editor"], {**data, "short_answer": SIMPLE},
                           clock.now())  # fmt: skip
        with pytest.raises(WorkflowError):
            return_draft(session, people["boss"], draft.id, clock.now(), "   ")
        returned = return_draft(session, people["boss"], draft.id, clock.now(), "Короче")
        assert (returned.status, returned.comment) == ("returned", "Короче")
        again = save_draft(session, rt.kb, people["editor"], {**data, "short_answer": "Звоните."},
                           clock.now())  # fmt: skip
        session.commit()
        assert [r.id for r in drafts(session)] == [again.id]
        assert current_data(session, rt.kb, str(data["id"]))["short_answer"] == "Звоните."


def test_readability_check_blocks_publishing(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    data = _first(rt)
    heavy = ("В целях осуществления надлежащего обеспечения реализации мероприятий по "
             "осуществлению деятельности в рамках функционирования учреждения, в соответствии "
             "с вышеизложенным, уведомляем о необходимости предоставления документации "
             "посредством обращения в установленном порядке незамедлительно.")  # fmt: skip
    with rt.factory() as session:
        draft = save_draft(session, rt.kb, people["editor"], {**data, "full_answer": heavy},
                           clock.now())  # fmt: skip
        with pytest.raises(WorkflowError, match="трудно читать"):
            approve(session, people["boss"], draft.id, clock.now(), None)
        assert session.get(KBRevision, draft.id).status == "draft"


@pytest.mark.parametrize(
    "odd",
    ["", "   ", "\u202e\u0000", "Ё" * 20_000, "<script>alert(1)</script> 🙂 z\u0301"],
)
def test_odd_unicode_is_refused_or_kept_as_text(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock, odd: str
) -> None:
    data = _first(rt)
    with rt.factory() as session:
        try:
            draft = save_draft(session, rt.kb, people["editor"], {**data, "short_answer": odd},
                               clock.now())  # fmt: skip
        except WorkflowError as exc:
            assert str(exc)  # a clear reason, never a traceback
            return
        session.commit()
        assert session.get(KBRevision, draft.id).data["short_answer"] == odd.strip()


def test_editor_needs_rights_and_a_valid_entry(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    data = _first(rt)
    with rt.factory() as session:
        with pytest.raises(Forbidden):
            save_draft(session, rt.kb, people["oper"], data, clock.now())
        with pytest.raises(WorkflowError, match="question"):
            save_draft(session, rt.kb, people["editor"], {**data, "question": " "}, clock.now())
        with pytest.raises(WorkflowError, match="почему"):
            save_draft(session, rt.kb, people["editor"],
                       {**data, "cannot_because": None, "available_when": "В мае."},
                       clock.now())  # fmt: skip


def _publish(rt: Runtime, people: dict[str, Operator], clock: FrozenClock,
             data: dict[str, object]) -> None:  # fmt: skip
    with rt.factory() as session:
        draft = save_draft(session, rt.kb, people["editor"], data, clock.now())
        approve(session, people["boss"], draft.id, clock.now(), None)
        session.commit()


def test_merge_brings_shipped_changes_to_fields_the_agency_did_not_touch(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock, kb_dir: Path
) -> None:
    data = _first(rt)
    entry_id = str(data["id"])
    _publish(rt, people, clock, {**data, "short_answer": SIMPLE})
    upgrade_shipped(kb_dir, entry_id, full_answer="Новый полный ответ из поставки. Звоните нам.")
    with rt.factory() as session:
        report = merge_shipped(session, rt.kb, clock.now())
        session.commit()
    assert [m.entry_id for m in report.merged] == [entry_id] and not report.conflicts
    assert report.merged[0].taken == ["full_answer"]
    kb = _answered(rt)
    assert kb.by_id[entry_id].short_answer == SIMPLE  # ours kept
    assert kb.by_id[entry_id].full_answer.startswith("Новый полный ответ")  # theirs applied
    with rt.factory() as session:  # merged once: up to date from now on
        again = merge_shipped(session, rt.kb, clock.now())
        assert again.up_to_date == [entry_id] and not again.merged


def test_merge_reports_conflicts_and_keeps_them_for_a_person(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock, kb_dir: Path
) -> None:
    data = _first(rt)
    entry_id = str(data["id"])
    _publish(rt, people, clock, {**data, "short_answer": SIMPLE})
    upgrade_shipped(kb_dir, entry_id, short_answer="Поставка: пишите в чат.")
    with rt.factory() as session:
        report = merge_shipped(session, rt.kb, clock.now())
        session.commit()
        assert [m.entry_id for m in report.conflicts] == [entry_id]
        assert f"CONFLICT {entry_id}.short_answer" in report.text()
        conflict = drafts(session)[0]
        assert conflict.status == "conflict" and set(conflict.conflicts) == {"short_answer"}
        assert conflict.conflicts["short_answer"]["theirs"] == "Поставка: пишите в чат."
    with rt.factory() as session:  # idempotent: no second conflict row
        merge_shipped(session, rt.kb, clock.now())
        session.commit()
        assert len(drafts(session)) == 1
    assert _answered(rt).by_id[entry_id].short_answer == SIMPLE  # ours until resolved
    with rt.factory() as session:  # a person resolves: a draft based on the new shipped entry
        fixed = {**data, "short_answer": "Пишите в чат. Мы поможем."}
        resolved = save_draft(session, rt.kb, people["editor"], fixed, clock.now())
        approve(session, people["boss"], resolved.id, clock.now(), None)
        session.commit()
        assert merge_shipped(session, rt.kb, clock.now()).up_to_date == [entry_id]


def test_a_merge_is_undone_by_restoring_the_version_before_it(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock, kb_dir: Path
) -> None:
    """The version before a merge, restored through review, stays: the next merge does not
    bring the shipped change again (the restored draft is based on the new shipped entry)."""
    data = _first(rt)
    entry_id = str(data["id"])
    _publish(rt, people, clock, {**data, "short_answer": SIMPLE})
    upgrade_shipped(kb_dir, entry_id, full_answer="Новый полный ответ из поставки. Звоните нам.")
    with rt.factory() as session:
        assert merge_shipped(session, rt.kb, clock.now()).merged
        session.commit()
    assert _answered(rt).by_id[entry_id].full_answer.startswith("Новый полный ответ")
    with rt.factory() as session:
        with pytest.raises(Forbidden):
            restore_version(session, rt.kb, people["oper"], entry_id, 1, clock.now())
        with pytest.raises(NotFound, match="нет версии 9"):
            restore_version(session, rt.kb, people["editor"], entry_id, 9, clock.now())
        with pytest.raises(WorkflowError, match="уже отвечает текстом версии 2"):
            restore_version(session, rt.kb, people["editor"], entry_id, 2, clock.now())
        draft = restore_version(session, rt.kb, people["editor"], entry_id, 1, clock.now())
        assert draft.origin == "version" and draft.status == "draft"
        with pytest.raises(Forbidden):
            approve(session, people["editor"], draft.id or 0, clock.now(), None)
        approve(session, people["boss"], draft.id or 0, clock.now(), None)
        session.commit()
        assert draft.version == 3
        assert diff_versions(session, rt.kb, entry_id, 1, 3) == ""
    assert _answered(rt).by_id[entry_id].full_answer == data["full_answer"]
    with rt.factory() as session:
        assert merge_shipped(session, rt.kb, clock.now()).up_to_date == [entry_id]


def test_retired_entries_are_listed_and_a_sheet_row_brings_one_back(
    rt: Runtime, people: dict[str, Operator], clock: FrozenClock
) -> None:
    from knowledge_base.entries import KBEntry

    data = _first(rt)
    entry_id = str(data["id"])
    with rt.factory() as session:
        with pytest.raises(WorkflowError, match="не снята с публикации"):
            restore_draft(session, rt.kb, people["editor"], entry_id, clock.now())
        with pytest.raises(NotFound):
            restore_draft(session, rt.kb, people["editor"], "no-such-entry", clock.now())
        retire = retire_draft(session, rt.kb, people["editor"], entry_id, clock.now())
        approve(session, people["boss"], retire.id or 0, clock.now(), None)
        session.commit()
        (item,) = retired_entries(session)
        assert (item.entry_id, item.retired_by, item.approved_by, item.version) == (
            entry_id, "editor", "boss", 1
        )  # fmt: skip
        assert item.retired_at is not None and item.pending is None
    assert entry_id not in _answered(rt).by_id
    sheet = [KBEntry.model_validate(e.model_dump()) for e in rt.kb.get().entries]
    with rt.factory() as session:  # the sheet as exported: the retired entry is not in it
        made = import_drafts(session, rt.kb, people["editor"], sheet, clock.now())
        assert (made.added, made.changed, made.restored, made.missing) == ([], [], [], [])
        again = import_drafts(
            session, rt.kb, people["editor"], [*sheet, KBEntry.model_validate(data)], clock.now()
        )
        assert again.restored == [entry_id] and not again.changed
        assert retired_entries(session)[0].pending is not None
        session.rollback()


def test_merge_entry_field_rules() -> None:
    base = {"id": "a", "question": "q", "short_answer": "s", "full_answer": "f"}
    ours = {**base, "short_answer": "S2"}
    theirs = {**base, "full_answer": "F2", "short_answer": "S2"}
    result = merge_entry(base, ours, theirs)
    assert result.clean and result.merged["full_answer"] == "F2"
    assert result.merged["short_answer"] == "S2" and result.taken == ["full_answer"]
    gone = merge_entry(base, ours, None)
    assert gone.removed and not gone.clean


def test_cli_merge_history_and_diff(
    rt: Runtime,
    people: dict[str, Operator],
    clock: FrozenClock,
    kb_dir: Path,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from core.config import get_settings
    from otklik.cli import app

    data = _first(rt)
    entry_id = str(data["id"])
    _publish(rt, people, clock, {**data, "short_answer": SIMPLE})
    for name, value in (("DATABASE_URL", db_url), ("DATA_DIR", str(tmp_path)),
                        ("KB_DIR", str(kb_dir))):  # fmt: skip
        monkeypatch.setenv(f"OTKLIK_{name}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        clean = runner.invoke(app, ["kb", "merge"])
        assert clean.exit_code == 0 and "conflicts: 0" in clean.output, clean.output
        upgrade_shipped(kb_dir, entry_id, short_answer="Поставка: пишите в чат.")
        dry = runner.invoke(app, ["kb", "merge", "--dry-run"])
        assert dry.exit_code == 1 and f"CONFLICT {entry_id}.short_answer" in dry.output
        with rt.factory() as session:
            assert drafts(session) == []  # a dry run changes nothing
        conflict = runner.invoke(app, ["kb", "merge"])
        assert conflict.exit_code == 1 and "theirs: 'Поставка: пишите в чат.'" in conflict.output
        shown = runner.invoke(app, ["kb", "history", entry_id])
        assert "published v1   by editor" in shown.output and "conflict" in shown.output
        diff = runner.invoke(app, ["kb", "diff", entry_id, "0", "1"])
        assert diff.exit_code == 0 and f"+short_answer: {SIMPLE}" in diff.output
        missing = runner.invoke(app, ["kb", "diff", entry_id, "1", "5"])
        assert missing.exit_code == 2 and "нет версии 5" in missing.output
    finally:
        get_settings.cache_clear()


def test_overlay_replaces_adds_and_survives_a_database_blip() -> None:
    from knowledge_base.search import KnowledgeBase
    from knowledge_base.store import KnowledgeBaseProvider

    class Flaky:
        def __init__(self) -> None:
            self.items: list[dict[str, object]] = []
            self.version = 0
            self.broken = False

        def key(self) -> object:
            return self.version

        def entries(self) -> list[dict[str, object]]:
            if self.broken:
                raise OSError("database is away")
            return self.items

    overlay = Flaky()
    provider = KnowledgeBaseProvider(
        Path("/nonexistent-kb-dir"), overlay=overlay, overlay_poll=0.0,
        loader=lambda d: KnowledgeBase.load(d),
    )  # fmt: skip
    first = provider.get()
    shipped_one = first.entries[0].model_dump(mode="json")
    new = {**shipped_one, "id": "agency-own", "question": "Где справка о составе семьи?"}
    overlay.items = [{**shipped_one, "short_answer": SIMPLE}, new, {"id": "broken"}]
    overlay.version = 1
    kb = provider.get()
    assert kb.by_id[str(shipped_one["id"])].short_answer == SIMPLE
    assert "agency-own" in kb.by_id and "broken" not in kb.by_id
    assert len(kb.entries) == len(first.entries) + 1
    overlay.broken, overlay.version = True, 2
    assert provider.get() is kb  # the previous index stays in use
    overlay.broken = False
    overlay.items = overlay.items[:1]
    assert "agency-own" not in provider.get().by_id  # asked again, not stuck on the error
