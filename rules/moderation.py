"""Moderation of public items by the rules in ``moderation.yaml``; every hit carries its reason."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.datafile import load_model_file


class ModerationRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    action: Literal["flag", "hide"]
    reason: str = Field(min_length=1)
    patterns: list[str] = Field(default_factory=list)
    words: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regex: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> ModerationRule:
        if not self.patterns and not self.words:
            raise ValueError("a rule needs patterns or words")
        return self

    @cached_property
    def regex(self) -> re.Pattern[str]:
        parts = list(self.patterns)
        if self.words:
            parts.append(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in self.words) + r")\w*")
        return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


class Verdict(BaseModel):
    rule_id: str
    action: str
    reason: str
    #: The matched fragment with its middle masked, so logs do not repeat personal data.
    evidence: str


class ModerationFile(BaseModel):
    """``moderation.yaml``: a mapping with the list of rules (an empty file has none)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[ModerationRule] = Field(default_factory=list)


class Moderation:
    def __init__(self, rules: list[ModerationRule]) -> None:
        self.rules = rules

    @classmethod
    def load(cls, rules_dir: Path) -> Moderation:
        found = load_model_file(rules_dir / "moderation.yaml", ModerationFile)
        return cls(found.rules)

    def check(self, text: str) -> list[Verdict]:
        verdicts = []
        for rule in self.rules:
            match = rule.regex.search(text or "")
            if match:
                verdicts.append(
                    Verdict(
                        rule_id=rule.id,
                        action=rule.action,
                        reason=rule.reason,
                        evidence=_mask(match.group(0)),
                    )
                )
        return verdicts


def _mask(fragment: str) -> str:
    if len(fragment) <= 4:
        return fragment[0] + "*" * (len(fragment) - 1)
    keep = max(1, len(fragment) // 5)
    return fragment[:keep] + "*" * (len(fragment) - 2 * keep) + fragment[-keep:]
