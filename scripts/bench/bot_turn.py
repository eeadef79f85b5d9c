"""CPU cost of the knowledge-base part of a citizen bot turn (a benchmark, not a timed test).

    .venv/bin/python scripts/bench/bot_turn.py [--rounds N] [--profile] [--full N]
        [--full-db sqlite,postgresql] [--worker]

What the citizen bot does per text message besides the database: the provider's ``get``
(is the index current?), the foreign-language guess and ``KnowledgeBase.answer``. The
messages are the colloquial and off-topic evaluation sets (slang, typos, translit). The
provider reads a private copy of the shipped entries (``kb_dir``), as a server does. Prints
CPU ms per turn (``time.process_time``) for the first round (cold word caches) and the later
ones (warm), and the provider's share; ``--profile`` prints the top of a cProfile.
``--full N`` also times N whole turns (``CitizenBot.handle``: the conversation locked, the
dialogue state loaded and saved, the answer stored in the outbox) on the ``--full-db``
databases (SQLite, a private PostgreSQL database), for the evaluation messages spread over 50
citizens of VK and Telegram (their ingest is not timed), with the SQL statements per turn;
``--worker`` also times ``process_pending`` with the bot's hook over N journalled events
(processing and the turn, as ``otklik worker`` does them).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import yaml

from bot.citizen.language import detect_foreign_language
from knowledge_base.index_cache import load_cached
from knowledge_base.russian import lemma, lemma_stem, stem
from knowledge_base.store import KnowledgeBaseProvider, prepare_writable

EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge_base" / "eval"


def messages() -> list[str]:
    texts: list[str] = []
    for name in ("colloquial.yaml", "offtopic.yaml"):
        data = yaml.safe_load((EVAL_DIR / name).read_text(encoding="utf-8"))
        for part in data.values() if isinstance(data, dict) else [data]:
            for item in part or []:
                if isinstance(item, dict) and "text" in item:
                    texts.append(str(item["text"]))
    return texts


def turn(provider: KnowledgeBaseProvider, text: str) -> str:
    if detect_foreign_language(text) is not None:
        return "foreign"
    answer = provider.get().answer(text)
    return answer.hit.entry_id if answer.hit else f"handoff:{answer.reason}"


def full_turns(count: int, texts: list[str], kind: str, path: str) -> tuple[float, float]:
    """CPU ms and SQL statements per event over ``count`` events on a ``kind`` database.

    ``path`` ``turn``: ``CitizenBot.handle`` of events ingested beforehand (not timed);
    ``worker``: events journalled beforehand (``accept``, not timed), then
    ``Inbox.process_pending`` with the bot's hook, as ``otklik worker`` runs it (one hook
    thread: the CPU is the same, the statements too)."""
    import json

    import sqlalchemy as sa
    from common import database  # type: ignore[import-not-found]

    from bot.citizen.app import answer_with
    from bot.citizen.engine import CitizenBot
    from bot.normalize import normalize
    from core.config import Settings
    from inbox.runtime import build_runtime
    from tests.helpers.workload import native_events

    with database(kind) as url, tempfile.TemporaryDirectory() as tmp:
        runtime = build_runtime(Settings(database_url=url, data_dir=Path(tmp)))
        try:
            bot = CitizenBot.from_settings(
                runtime.factory, runtime.clock, runtime.rules_source, runtime.settings,
                kb=runtime.kb,
            )  # fmt: skip
            runtime.kb.get()  # the first build is not part of a turn
            turns = []
            for n, native in enumerate(native_events(count, threads=50)):
                body = json.loads(native.body)
                message = body.get("message") or body["object"]["message"]
                message["text"] = texts[n % len(texts)]
                event = normalize(native.channel, json.dumps(body).encode(), runtime.profile)
                if path == "worker":
                    runtime.inbox.accept(event)
                else:
                    _, processed = runtime.inbox.ingest(event)
                    turns.append((processed, event))
            statements = [0]

            def count_statement(*_: object) -> None:
                statements[0] += 1

            sa.event.listen(runtime.engine, "before_cursor_execute", count_statement)
            started = time.process_time()
            if path == "worker":
                answer_with(runtime, bot.handle_pending)
                done = 0
                while done < count:
                    found = runtime.inbox.process_pending(500)
                    assert found, "process_pending found nothing to do"
                    done += found
            else:
                for processed, event in turns:
                    bot.handle(processed, event)
            cpu = (time.process_time() - started) / count * 1000
            return cpu, statements[0] / count
        finally:
            runtime.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--full", type=int, default=0, help="whole turns to time")
    parser.add_argument(
        "--full-db", default="sqlite", help="databases of --full: sqlite,postgresql"
    )
    parser.add_argument(
        "--worker", action="store_true",
        help="with --full: also process_pending with the bot's hook (processing + turn)",
    )  # fmt: skip
    args = parser.parse_args()
    texts = messages()
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp) / "cache"
        # As a server: the index is read from the on-disk cache (built by an earlier run),
        # so the word caches (lemmas) start cold, as in a freshly started worker.
        load_cached(prepare_writable(Path(tmp) / "kb"), cache_dir=cache_dir)
        for cached in (lemma, lemma_stem, stem):
            cached.cache_clear()
        provider = KnowledgeBaseProvider(
            Path(tmp) / "kb", loader=lambda path: load_cached(path, cache_dir=cache_dir)
        )
        provider.get()  # the build is not part of a turn
        started = time.process_time()
        for text in texts:
            turn(provider, text)
        cold = (time.process_time() - started) / len(texts) * 1000
        started = time.process_time()
        for _ in range(args.rounds):
            for text in texts:
                turn(provider, text)
        warm = (time.process_time() - started) / (len(texts) * args.rounds) * 1000
        started = time.process_time()
        for _ in range(args.rounds):
            for _text in texts:
                provider.get()
        get_ms = (time.process_time() - started) / (len(texts) * args.rounds) * 1000
        print(f"{len(texts)} messages, {args.rounds} warm rounds")
        print(f"cold round: {cold:.2f} CPU ms/turn")
        print(f"warm rounds: {warm:.2f} CPU ms/turn ({1000 / warm:.0f} turns/s)")
        print(f"provider.get alone: {get_ms:.3f} CPU ms/call")
        for kind in args.full_db.split(",") if args.full else []:
            for path in ("turn", "worker") if args.worker else ("turn",):
                cpu, sql = full_turns(args.full, texts, kind, path)
                what = "whole turns" if path == "turn" else "worker (processing + turn)"
                print(
                    f"{what}, {kind}: {cpu:.2f} CPU ms/event ({1000 / cpu:.0f}/s CPU-bound),"
                    f" {sql:.1f} SQL statements/event"
                )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for text in texts:
                turn(provider, text)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
