"""What the agency may write to citizens first, and about what (``rules/proactive.yaml``).

Life situations with their services are the scopes of a consent (a consent to a situation
covers each of its services); topics are what citizens subscribe to and supervisors send
mailings about, each under one service. Read from the rules directory
(``OTKLIK_RULES_DIR``); without the file there, the shipped one. Re-read when it changes.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.datafile import CachedFile, load_model_file

FILE_NAME = "proactive.yaml"
SHIPPED = Path(__file__).resolve().parent / FILE_NAME
_ID = r"^[a-z0-9_]{1,30}$"


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1, max_length=80)


class Service(_Item):
    pass


class LifeSituation(_Item):
    services: tuple[Service, ...] = Field(min_length=1)


class Topic(_Item):
    #: The service whose consent a subscription to this topic needs.
    service: str = Field(pattern=_ID)
    #: The citizen picks a district (``areas``); mailings may go to one district only.
    areas: bool = False


class Area(_Item):
    pass


class ProactiveRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    wording: str = Field(min_length=10, max_length=1000)
    stop_words: tuple[str, ...] = Field(default=("стоп", "отписаться"), min_length=1)
    life_situations: tuple[LifeSituation, ...] = Field(min_length=1)
    topics: tuple[Topic, ...] = ()
    areas: tuple[Area, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ProactiveRules:
        if "{what}" not in self.wording:
            raise ValueError("wording: must name what the consent is for as {what}")
        services = [s.id for ls in self.life_situations for s in ls.services]
        for name, ids in (
            ("life_situations", [ls.id for ls in self.life_situations]),
            ("services", services),
            ("topics", [t.id for t in self.topics]),
            ("areas", [a.id for a in self.areas]),
        ):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"{name}: repeated id {', '.join(repeated)}")
        for topic in self.topics:
            if topic.service not in services:
                raise ValueError(f"topics: {topic.id}: unknown service {topic.service}")
        if any(t.areas for t in self.topics) and not self.areas:
            raise ValueError("areas: a topic has areas, but no areas are listed")
        return self

    def is_stop(self, text: str) -> bool:
        """The message is one stop word (case, spaces and punctuation aside)."""
        word = "".join(c for c in text.casefold() if c.isalnum()).replace("ё", "е")
        return bool(word) and word in {w.casefold().replace("ё", "е") for w in self.stop_words}

    def situation(self, situation_id: str) -> LifeSituation | None:
        return next((ls for ls in self.life_situations if ls.id == situation_id), None)

    def service(self, service_id: str) -> Service | None:
        return next(
            (s for ls in self.life_situations for s in ls.services if s.id == service_id), None
        )

    def situation_of(self, service_id: str) -> LifeSituation | None:
        return next(
            (ls for ls in self.life_situations if any(s.id == service_id for s in ls.services)),
            None,
        )

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def area(self, area_id: str) -> Area | None:
        return next((a for a in self.areas if a.id == area_id), None)

    def scope_title(self, kind: str, scope_id: str) -> str | None:
        """The title of a consent's scope (``situation`` or ``service``), None if unknown."""
        item = self.situation(scope_id) if kind == "situation" else self.service(scope_id)
        return item.title if item else None

    def consent_text(self, kind: str, scope_id: str) -> str:
        """The exact wording of a consent to this scope, as the citizen is shown it."""
        title = self.scope_title(kind, scope_id)
        if title is None:
            raise KeyError(f"{kind}:{scope_id}")
        return " ".join(self.wording.format(what=title).split())


def load_proactive_rules(path: Path) -> ProactiveRules:
    return load_model_file(path, ProactiveRules)


_FILE = CachedFile(FILE_NAME, SHIPPED, load_proactive_rules)


def proactive_rules(rules_dir: Path) -> ProactiveRules:
    """The rules of ``rules_dir`` (or the shipped ones), re-read when the file changes."""
    return _FILE.get(rules_dir)
