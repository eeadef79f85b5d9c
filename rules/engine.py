"""Applies ``response.yaml`` to a normalized event: does it need a response, and by when?"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.events import Channel, InboundEvent, Place
from rules.datafile import load_model_file
from rules.profile import AgencyProfile
from rules.working_calendar import WorkingCalendar, load_calendar


class Kind(StrEnum):
    mention = "mention"
    comment = "comment"
    appeal = "appeal"
    other = "other"


_FACT_VALUES: dict[str, Any] = {
    "place": {p.value for p in Place},
    "channel": {c.value for c in Channel},
    "is_own": bool,
    "is_automatic": bool,
    "reply_to_official": bool,
    "mentions_agency": bool,
    "is_public": bool,
    "on_agency_page": bool,
}


class Deadline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hours: float = Field(gt=0)
    calendar: Literal["calendar", "working"] = "calendar"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    when: dict[str, Any] = Field(default_factory=dict)
    kind: Kind
    deadline: Deadline | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _check(self) -> Rule:
        for key, expected in self.when.items():
            if key not in _FACT_VALUES:
                raise ValueError(f"unknown condition {key!r}; known: {', '.join(_FACT_VALUES)}")
            values = expected if isinstance(expected, list) else [expected]
            allowed = _FACT_VALUES[key]
            for value in values:
                ok = isinstance(value, bool) if allowed is bool else value in allowed
                if not ok:
                    raise ValueError(f"condition {key!r}: {value!r} is not one of {allowed}")
        if self.kind is Kind.other and self.deadline is not None:
            raise ValueError("kind 'other' needs no response, so it takes no deadline")
        if self.kind is not Kind.other and self.deadline is None:
            raise ValueError(f"kind {self.kind.value!r} needs a deadline")
        return self

    def matches(self, facts: dict[str, Any]) -> bool:
        for key, expected in self.when.items():
            allowed = expected if isinstance(expected, list) else [expected]
            if facts.get(key) not in allowed:
                return False
        return True


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warn_before_minutes: float = 30
    rules: list[Rule] = Field(min_length=1)


class Classification(BaseModel):
    kind: Kind
    requires_response: bool
    deadline_hours: float | None
    calendar: str | None
    rule_id: str
    reason: str
    mentions: list[str] = Field(default_factory=list)


class ResponseRules:
    """The loaded rules plus what they need to compute due times."""

    def __init__(self, ruleset: RuleSet, calendar: WorkingCalendar) -> None:
        self.ruleset = ruleset
        self.calendar = calendar

    @classmethod
    def load(cls, rules_dir: Path) -> ResponseRules:
        ruleset = load_model_file(rules_dir / "response.yaml", RuleSet)
        return cls(ruleset, load_calendar(rules_dir / "calendar.yaml"))

    @property
    def warn_before(self) -> timedelta:
        return timedelta(minutes=self.ruleset.warn_before_minutes)

    def classify(self, event: InboundEvent, profile: AgencyProfile) -> Classification:
        by_name = profile.find_mentions(event.text)
        explicit = [m for m in event.facts.mentions if profile.is_agency_handle(m)]
        facts = {
            "place": event.facts.place.value,
            "channel": event.channel.value,
            "is_own": event.facts.is_own,
            "is_automatic": event.facts.is_automatic,
            "reply_to_official": event.facts.reply_to_official,
            "mentions_agency": bool(explicit or by_name),
            "is_public": event.facts.is_public,
            "on_agency_page": event.facts.on_agency_page,
        }
        for rule in self.ruleset.rules:
            if rule.matches(facts):
                return Classification(
                    kind=rule.kind,
                    requires_response=rule.deadline is not None,
                    deadline_hours=rule.deadline.hours if rule.deadline else None,
                    calendar=rule.deadline.calendar if rule.deadline else None,
                    rule_id=rule.id,
                    reason=rule.reason,
                    mentions=sorted(set(explicit + by_name)),
                )
        return Classification(
            kind=Kind.other,
            requires_response=False,
            deadline_hours=None,
            calendar=None,
            rule_id="(none)",
            reason="Ни одно правило не подошло",
            mentions=sorted(set(explicit + by_name)),
        )

    def deadline_of(self, rule_id: str) -> Classification | None:
        """The classification a rule gives, to restart its clock (e.g. on a hand-off)."""
        for rule in self.ruleset.rules:
            if rule.id == rule_id and rule.deadline is not None:
                return Classification(
                    kind=rule.kind,
                    requires_response=True,
                    deadline_hours=rule.deadline.hours,
                    calendar=rule.deadline.calendar,
                    rule_id=rule.id,
                    reason=rule.reason,
                )
        return None

    def due_at(self, published_at: datetime, classification: Classification) -> datetime | None:
        """When the response is due, counted from publication."""
        if classification.deadline_hours is None:
            return None
        if classification.calendar == "working":
            return self.calendar.add_working_hours(published_at, classification.deadline_hours)
        return published_at + timedelta(hours=classification.deadline_hours)
