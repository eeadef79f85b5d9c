"""The agency's KB directory (copy-on-first-write of the shipped entries) and the shared,
reloadable knowledge base: changes on disk are noticed, broken files do not take the bot
down, threads share one build, and the command-line tools read what the server reads."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.config import Settings, get_settings
from knowledge_base.nlu_backend import get_nlu_backend
from knowledge_base.search import KnowledgeBase
from knowledge_base.store import (
    SEED_DIR,
    KnowledgeBaseProvider,
    prepare_writable,
    write_atomically,
)
from otklik.cli import app

NEW_QUESTION = "Куда сдать ёлку после праздников?"
NEW_SHORT = "Ёлки и старую мебель забирают по средам. Напишите нам в личные сообщения адрес."


def shipped() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in SEED_DIR.glob("*.yaml")}


def edit(directory: Path, entry_id: str = "garbage-bulky", **texts: str) -> None:
    """Change an entry's texts the way the admin UI does (whole file replaced at once)."""
    path = directory / "garbage.yaml"
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in items:
        if item["id"] == entry_id:
            item.update(texts)
    write_atomically(path, yaml.safe_dump(items, allow_unicode=True, sort_keys=False))


def short_answer(kb: KnowledgeBase, entry_id: str = "garbage-bulky") -> str:
    return kb.by_id[entry_id].short_answer


class CountingLoader:
    """``KnowledgeBase.load`` that counts its calls and can be held half-way."""

    def __init__(self) -> None:
        self.calls = 0
        self.hold: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self, directory: Path) -> KnowledgeBase:
        self.calls += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(60)
        return KnowledgeBase.load(directory)


def test_the_shipped_entries_are_read_until_the_first_edit_copies_them(tmp_path: Path) -> None:
    before = shipped()
    agency = tmp_path / "knowledge_base"
    provider = KnowledgeBaseProvider(agency)
    assert provider.entries_dir == SEED_DIR
    first = provider.get()
    assert provider.generation == 1 and not agency.exists()
    with provider.editing() as directory:
        assert directory == agency
        edit(directory, short_answer=NEW_SHORT)
    assert provider.entries_dir == agency
    assert sorted(p.name for p in agency.glob("*.yaml")) == sorted(before)
    second = provider.get()  # noticed without being told
    assert second is not first and provider.generation == 2
    assert short_answer(second) == NEW_SHORT and short_answer(first) != NEW_SHORT
    assert len(second.entries) == len(first.entries)
    assert shipped() == before
    assert not list(tmp_path.glob(".*.tmp"))  # no scratch copy left behind


def test_a_copy_is_made_once_and_never_overwrites_the_agencys_edits(tmp_path: Path) -> None:
    agency = tmp_path / "knowledge_base"
    agency.mkdir()  # an empty directory made by the deployment
    assert prepare_writable(agency) == agency
    edit(agency, short_answer=NEW_SHORT)
    prepare_writable(agency)
    assert short_answer(KnowledgeBase.load(agency)) == NEW_SHORT
    # A directory that cannot be renamed over (it holds another file): copied file by file.
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "README.txt").write_text("KB of the agency", encoding="utf-8")
    prepare_writable(mounted)
    assert sorted(p.name for p in mounted.glob("*.yaml")) == sorted(shipped())
    assert sorted(p.name for p in mounted.iterdir() if p.name.startswith(".")) == []


def test_a_change_made_by_another_process_is_used_on_the_next_get(tmp_path: Path) -> None:
    agency = tmp_path / "kb"
    shutil.copytree(SEED_DIR, agency)
    here, there = KnowledgeBaseProvider(agency), KnowledgeBaseProvider(agency)
    old = there.get()
    assert there.get() is old  # nothing changed: the same index, not rebuilt
    with here.editing() as directory:
        edit(directory, short_answer=NEW_SHORT)
        assert short_answer(here.reload()) == NEW_SHORT
    assert short_answer(there.get()) == NEW_SHORT
    assert there.generation == 2


def test_a_file_that_does_not_load_keeps_the_previous_knowledge_base(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agency = tmp_path / "kb"
    shutil.copytree(SEED_DIR, agency)
    loader = CountingLoader()
    provider = KnowledgeBaseProvider(agency, loader=loader)
    good = provider.get()
    (agency / "zhkh.yaml").write_text("- id: [broken\n", encoding="utf-8")
    assert provider.get() is good and provider.get() is good
    assert loader.calls == 2  # tried once for the broken files, not on every message
    assert "knowledge base not reloaded" in caplog.text
    shutil.copy(SEED_DIR / "zhkh.yaml", agency / "zhkh.yaml")
    assert provider.get() is not good and provider.generation == 2


def test_the_first_load_is_built_once_for_threads_asking_at_the_same_time(
    tmp_path: Path,
) -> None:
    loader = CountingLoader()
    loader.hold = threading.Event()
    provider = KnowledgeBaseProvider(tmp_path / "kb", loader=loader)
    results: list[KnowledgeBase] = []
    threads = [threading.Thread(target=lambda: results.append(provider.get())) for _ in range(6)]
    for thread in threads:
        thread.start()
    assert loader.entered.wait(60)
    loader.hold.set()
    for thread in threads:
        thread.join(60)
    assert loader.calls == 1 and len(results) == 6
    assert all(kb is results[0] for kb in results)


def test_while_one_thread_rebuilds_the_others_answer_with_the_previous_one(
    tmp_path: Path,
) -> None:
    agency = tmp_path / "kb"
    shutil.copytree(SEED_DIR, agency)
    loader = CountingLoader()
    provider = KnowledgeBaseProvider(agency, loader=loader)
    old = provider.get()
    edit(agency, short_answer=NEW_SHORT)
    loader.hold, loader.entered = threading.Event(), threading.Event()
    rebuilt: list[KnowledgeBase] = []
    builder = threading.Thread(target=lambda: rebuilt.append(provider.get()))
    builder.start()
    assert loader.entered.wait(60)  # the builder is inside the (held) build
    assert provider.get() is old  # not kept waiting
    loader.hold.set()
    builder.join(60)
    assert short_answer(rebuilt[0]) == NEW_SHORT and provider.get() is rebuilt[0]
    assert loader.calls == 2


def test_a_fixed_knowledge_base_is_never_reloaded() -> None:
    kb = KnowledgeBase.load()
    provider = KnowledgeBaseProvider.fixed(kb)
    assert provider.get() is kb and provider.generation == 1
    with pytest.raises(RuntimeError):
        provider.writable_dir()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """OTKLIK_KB_DIR set to an agency copy with an edited entry, as a server would read it."""
    agency = tmp_path / "agency-kb"
    shutil.copytree(SEED_DIR, agency)
    edit(agency, question=NEW_QUESTION, short_answer=NEW_SHORT)
    monkeypatch.setenv("OTKLIK_KB_DIR", str(agency))
    get_settings.cache_clear()
    yield agency
    get_settings.cache_clear()


def test_the_command_line_tools_and_the_nlu_read_the_configured_directory(
    configured: Path,
) -> None:
    runner = CliRunner()
    found = runner.invoke(app, ["kb", "search", NEW_QUESTION, "--json", "-k", "1"])
    assert found.exit_code == 0, found.output
    [hit] = json.loads(found.output)["hits"]
    assert (hit["entry_id"], hit["short_answer"]) == ("garbage-bulky", NEW_SHORT)
    checked = runner.invoke(app, ["kb", "check"])
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("OK: ") and str(configured) in checked.output
    assert get_nlu_backend({}).parse(NEW_QUESTION).intent == "garbage-bulky"


def test_kb_dir_defaults_to_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTKLIK_KB_DIR", "")
    assert Settings(data_dir=Path("/srv/otklik")).effective_kb_dir == Path(
        "/srv/otklik/knowledge_base"
    )
    monkeypatch.setenv("OTKLIK_KB_DIR", "/srv/kb")
    assert Settings(data_dir=Path("/srv/otklik")).effective_kb_dir == Path("/srv/kb")
