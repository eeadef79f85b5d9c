"""What understanding a citizen's message yields, whichever backend (embedded or Rasa) did it."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class Entity(BaseModel):
    #: address, appeal_number, phone, date (and whatever a backend adds)
    kind: str
    value: str
    start: int
    end: int


class NLUResult(BaseModel):
    #: The KB entry id the message asks about, or None when nothing fits.
    intent: str | None
    #: 0..1; below the configured threshold the bot hands off instead of guessing.
    confidence: float
    topic: str | None = None
    life_situation: str | None = None
    entities: list[Entity] = Field(default_factory=list)
    #: Next candidates as (intent, confidence), best first.
    ranking: list[tuple[str, float]] = Field(default_factory=list)
    backend: str = ""


class NLUBackend(Protocol):
    name: str

    def parse(self, text: str) -> NLUResult: ...
