"""The KB search index cached on disk (knowledge_base/index_cache.py): read back instead of
rebuilt, rebuilt when an entry file, a data file or the code changes, safe against corrupt
and foreign files, written atomically; ``otklik kb search`` uses it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.config import Settings, get_settings
from knowledge_base import index_cache
from knowledge_base.index_cache import PREFIX, SUFFIX, index_key, load_cached
from knowledge_base.search import KnowledgeBase
from knowledge_base.store import SEED_DIR
from otklik.cli import app

QUERY = "в подъезде не горит свет"


@pytest.fixture
def entries(tmp_path: Path) -> Path:
    """A small copy of the shipped entries (two files) to edit."""
    directory = tmp_path / "entries"
    directory.mkdir()
    for name in ("zhkh.yaml", "garbage.yaml"):
        shutil.copy(SEED_DIR / name, directory / name)
    return directory


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def counted_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every index actually built (not read from the cache) is recorded."""
    built: list[Path] = []
    original = KnowledgeBase.load.__func__  # type: ignore[attr-defined]

    def load(cls: type[KnowledgeBase], directory: Path, **kwargs: object) -> KnowledgeBase:
        built.append(directory)
        return original(cls, directory, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(KnowledgeBase, "load", classmethod(load))
    yield built


def index_files(cache: Path) -> list[Path]:
    return sorted(cache.glob(f"{PREFIX}*{SUFFIX}"))


def top(kb: KnowledgeBase, text: str = QUERY) -> tuple[str, float]:
    hit = kb.search(text, k=1)[0]
    return hit.entry_id, hit.confidence


def test_second_load_reads_the_cache_and_answers_the_same(
    entries: Path, cache: Path, counted_builds: list[Path]
) -> None:
    first = load_cached(entries, cache_dir=cache)
    assert counted_builds == [entries]
    assert len(index_files(cache)) == 1
    second = load_cached(entries, cache_dir=cache)
    assert counted_builds == [entries]  # not built again
    assert second is not first
    assert [e.id for e in second.entries] == [e.id for e in first.entries]
    assert top(second) == top(first) == ("zhkh-stairwell-light", top(first)[1])
    assert second.entries[0].source == first.entries[0].source
    assert (cache.stat().st_mode & 0o777) == 0o700
    assert (index_files(cache)[0].stat().st_mode & 0o777) == 0o600
    assert not list(cache.glob(".*.tmp"))


def test_an_edited_entry_file_rebuilds_the_index(
    entries: Path, cache: Path, counted_builds: list[Path]
) -> None:
    load_cached(entries, cache_dir=cache)
    path = entries / "garbage.yaml"
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    items[0]["question"] = "Куда сдать ёлку после праздников?"
    path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    kb = load_cached(entries, cache_dir=cache)
    assert len(counted_builds) == 2
    assert kb.search("куда сдать ёлку после праздников", k=1)[0].entry_id == items[0]["id"]
    # A new file and a removed one change the key too.
    shutil.copy(SEED_DIR / "animals.yaml", entries / "animals.yaml")
    assert any(e.id.startswith("animals-") for e in load_cached(entries, cache_dir=cache).entries)
    (entries / "animals.yaml").unlink()
    assert not any(
        e.id.startswith("animals-") for e in load_cached(entries, cache_dir=cache).entries
    )
    # Back to the content of an earlier build: its index is still cached (content-addressed).
    assert len(counted_builds) == 3


def test_key_covers_data_files_code_and_directory(
    entries: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = index_key(entries)
    assert index_key(entries) == before  # stable
    other = tmp_path / "other"
    shutil.copytree(entries, other)
    assert index_key(other) != before  # entries remember the file they came from
    data = tmp_path / "lexicon.yaml"
    data.write_text("дубак: холодно\n", encoding="utf-8")
    monkeypatch.setattr(index_cache, "DATA_FILES", (*index_cache.DATA_FILES[:-1], data))
    with_data = index_key(entries)
    data.write_text("дубак: мороз\n", encoding="utf-8")
    assert index_key(entries) != with_data
    code = tmp_path / "search.py"
    code.write_text("VERSION = 1\n", encoding="utf-8")
    monkeypatch.setattr(index_cache, "CODE_FILES", (code,))
    with_code = index_key(entries)
    code.write_text("VERSION = 2\n", encoding="utf-8")
    assert index_key(entries) != with_code


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"garbage" * 100, id="garbage"),
        pytest.param(lambda data: data[:17] + b"\x80\x05junk", id="format-then-junk"),
    ],
)
def test_corrupt_cache_file_is_rebuilt_and_replaced(
    entries: Path, cache: Path, counted_builds: list[Path], damage: object
) -> None:
    load_cached(entries, cache_dir=cache)
    (path,) = index_files(cache)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    kb = load_cached(entries, cache_dir=cache)
    assert len(counted_builds) == 2
    assert top(kb)[0] == "zhkh-stairwell-light"
    load_cached(entries, cache_dir=cache)  # the rebuilt file is whole again
    assert len(counted_builds) == 2


def test_a_file_holding_another_key_is_not_trusted(
    entries: Path, cache: Path, counted_builds: list[Path], tmp_path: Path
) -> None:
    """A valid index copied under another index's name (another directory's) is rebuilt."""
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(SEED_DIR / "animals.yaml", other / "animals.yaml")
    load_cached(other, cache_dir=cache)
    (foreign,) = index_files(cache)
    target = cache / f"{PREFIX}{index_key(entries)}{SUFFIX}"
    shutil.copy(foreign, target)
    kb = load_cached(entries, cache_dir=cache)
    assert counted_builds == [other, entries]
    assert not any(e.id.startswith("animals-") for e in kb.entries)


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_file_others_can_write_is_not_read(
    entries: Path, cache: Path, counted_builds: list[Path], mode: int
) -> None:
    """Unpickling runs code: a cache file someone else could have written is never read."""
    load_cached(entries, cache_dir=cache)
    (path,) = index_files(cache)
    path.chmod(mode)
    load_cached(entries, cache_dir=cache)
    assert len(counted_builds) == 2
    assert (path.stat().st_mode & 0o777) == 0o600  # replaced by a private one


def test_a_cache_directory_others_can_write_is_not_read(
    entries: Path, cache: Path, counted_builds: list[Path]
) -> None:
    load_cached(entries, cache_dir=cache)
    cache.chmod(0o777)
    try:
        load_cached(entries, cache_dir=cache)
        assert len(counted_builds) == 2
    finally:
        cache.chmod(0o700)


def test_a_symlinked_cache_file_is_not_read(
    entries: Path, cache: Path, counted_builds: list[Path], tmp_path: Path
) -> None:
    load_cached(entries, cache_dir=cache)
    (path,) = index_files(cache)
    elsewhere = tmp_path / "elsewhere.pickle"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    load_cached(entries, cache_dir=cache)
    assert len(counted_builds) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_an_unwritable_cache_still_gives_the_index(entries: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    kb = load_cached(entries, cache_dir=locked / "cache")
    assert top(kb)[0] == "zhkh-stairwell-light"


def test_a_cache_path_that_is_a_file_still_gives_the_index(entries: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory", encoding="utf-8")
    kb = load_cached(entries, cache_dir=blocker)
    assert top(kb)[0] == "zhkh-stairwell-light"
    assert blocker.read_text(encoding="utf-8") == "not a directory"


def test_only_the_newest_index_files_are_kept(entries: Path, cache: Path) -> None:
    path = entries / "garbage.yaml"
    original = path.read_text(encoding="utf-8")
    for number in range(index_cache.KEEP + 3):
        path.write_text(f"{original}\n# правка {number}\n", encoding="utf-8")
        load_cached(entries, cache_dir=cache)
    files = index_files(cache)
    assert len(files) == index_cache.KEEP
    assert cache / f"{PREFIX}{index_key(entries)}{SUFFIX}" in files


def test_cli_search_uses_the_cache_dir_of_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cli-cache"
    monkeypatch.setenv("OTKLIK_CACHE_DIR", str(cache))
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["kb", "search", QUERY, "--json", "-k", "1"])
        assert first.exit_code == 0, first.output
        assert len(index_files(cache)) == 1
        stamp = index_files(cache)[0].stat().st_mtime_ns
        second = runner.invoke(app, ["kb", "search", QUERY, "--json", "-k", "1"])
        assert json.loads(second.output) == json.loads(first.output)
        assert json.loads(first.output)["hits"][0]["entry_id"] == "zhkh-stairwell-light"
        assert index_files(cache)[0].stat().st_mtime_ns == stamp  # read, not rewritten
    finally:
        get_settings.cache_clear()


def test_cache_dir_setting_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTKLIK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/someone")
    assert Settings().effective_cache_dir == Path("/var/cache/someone/otklik")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert Settings().effective_cache_dir == Path.home() / ".cache" / "otklik"
    monkeypatch.setenv("OTKLIK_CACHE_DIR", "")
    assert Settings().effective_cache_dir == Path.home() / ".cache" / "otklik"
    monkeypatch.setenv("OTKLIK_CACHE_DIR", "/srv/otklik-cache")
    assert Settings().effective_cache_dir == Path("/srv/otklik-cache")


def test_the_server_runtime_reads_the_index_through_the_cache(
    tmp_path: Path, counted_builds: list[Path]
) -> None:
    """What the bot, the phone robot and the operator's suggestions share (``runtime.kb``)
    is built once per content and read back by the next process (here: the next runtime)."""
    from inbox.runtime import build_runtime

    cache = tmp_path / "server-cache"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", data_dir=tmp_path, cache_dir=cache
    )
    first = build_runtime(settings)
    try:
        assert top(first.kb.get())[0] == "zhkh-stairwell-light"
    finally:
        first.dispose()
    assert len(index_files(cache)) == 1
    second = build_runtime(settings)
    try:
        assert top(second.kb.get())[0] == "zhkh-stairwell-light"
    finally:
        second.dispose()
    assert counted_builds == [SEED_DIR]
