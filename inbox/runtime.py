"""Wiring: builds the inbox from settings (database, rules, profile, moderation, clock)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from core.clock import Clock, SystemClock
from core.config import Settings
from inbox.db import make_engine, session_factory
from inbox.ingest import Inbox
from inbox.journal_failures import RetryPolicy
from inbox.kb_workflow import DatabaseOverlay
from inbox.secret_key import with_secret_key
from knowledge_base.index_cache import load_cached
from knowledge_base.store import KnowledgeBaseProvider
from rules.engine import ResponseRules
from rules.moderation import Moderation
from rules.profile import AgencyProfile, load_profile
from rules.reloadable import Reloadable


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    clock: Clock
    inbox: Inbox
    #: The knowledge base every consumer of this process reads (reloaded after edits).
    kb: KnowledgeBaseProvider

    # Rules, profile and moderation are the inbox's, as their files say now: an edit in the
    # admin UI (or by hand) reaches this process and every worker with the next event.

    @property
    def rules_source(self) -> Reloadable[ResponseRules]:
        return self.inbox.rules_source

    @property
    def rules(self) -> ResponseRules:
        return self.inbox.rules

    @property
    def profile_source(self) -> Reloadable[AgencyProfile]:
        return self.inbox.profile_source

    @property
    def profile(self) -> AgencyProfile:
        return self.inbox.profile

    @property
    def moderation(self) -> Moderation:
        return self.inbox.moderation

    def dispose(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    settings = with_secret_key(settings)  # OTKLIK_SECRET_KEY, else the data directory's key
    engine = make_engine(settings.effective_database_url)
    factory = session_factory(engine)
    rules_dir = settings.rules_dir
    rules = Reloadable(
        lambda: ResponseRules.load(rules_dir),
        [rules_dir / "response.yaml", rules_dir / "calendar.yaml"],
    )
    profile = Reloadable(lambda: load_profile(settings.profile), [settings.profile])
    moderation = Reloadable(lambda: Moderation.load(rules_dir), [rules_dir / "moderation.yaml"])
    clock = clock or SystemClock()
    retry_policy = RetryPolicy.from_settings(settings)
    inbox = Inbox(factory, rules, profile, moderation, clock, retry_policy=retry_policy)
    # loaded on first use: the index from the on-disk cache, the published overrides of the
    # database laid over the files
    cache_dir = settings.effective_cache_dir
    kb = KnowledgeBaseProvider(
        settings.effective_kb_dir,
        loader=lambda path: load_cached(path, cache_dir=cache_dir),
        overlay=DatabaseOverlay(factory, settings.data_dir / "kb-published.stamp"),
    )
    return Runtime(settings, engine, factory, clock, inbox, kb)
