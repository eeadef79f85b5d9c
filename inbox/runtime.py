"""Wiring: builds the inbox from settings (database, rules, profile, moderation, clock)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from inbox.clock import Clock, SystemClock
from inbox.config import Settings
from inbox.db import make_engine, session_factory
from inbox.ingest import Inbox
from inbox.journal_failures import RetryPolicy
from inbox.secret_key import with_secret_key
from knowledge_base.store import KnowledgeBaseProvider
from rules.engine import ResponseRules
from rules.moderation import Moderation
from rules.profile import AgencyProfile, load_profile


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    rules: ResponseRules
    profile: AgencyProfile
    moderation: Moderation
    clock: Clock
    inbox: Inbox
    #: The knowledge base every consumer of this process reads (reloaded after edits).
    kb: KnowledgeBaseProvider

    def dispose(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    settings = with_secret_key(settings)  # OTKLIK_SECRET_KEY, else the data directory's key
    engine = make_engine(settings.effective_database_url)
    factory = session_factory(engine)
    rules = ResponseRules.load(settings.rules_dir)
    profile = load_profile(settings.profile)
    moderation = Moderation.load(settings.rules_dir)
    clock = clock or SystemClock()
    retry_policy = RetryPolicy.from_settings(settings)
    inbox = Inbox(factory, rules, profile, moderation, clock, retry_policy=retry_policy)
    kb = KnowledgeBaseProvider(settings.effective_kb_dir)  # loaded on first use
    return Runtime(settings, engine, factory, rules, profile, moderation, clock, inbox, kb)
