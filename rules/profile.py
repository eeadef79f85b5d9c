"""The agency profile: names and accounts that identify the agency on every channel."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rules.datafile import load_model_file
from rules.russian import name_pattern


class TelegramProfile(BaseModel):
    bot_username: str | None = None
    channel_id: int | None = None
    channel_username: str | None = None
    discussion_group_id: int | None = None


class VKProfile(BaseModel):
    group_id: int | None = None
    screen_name: str | None = None


class MaxProfile(BaseModel):
    """The agency on MAX: its bot and its official channel (docs/max.md)."""

    bot_user_id: int | None = None
    bot_username: str | None = None
    channel_id: int | None = None
    channel_username: str | None = None


class EmailProfile(BaseModel):
    addresses: list[str] = Field(default_factory=list)


class PhoneProfile(BaseModel):
    numbers: list[str] = Field(default_factory=list)


class AgencyProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    names: list[str] = Field(min_length=1)
    telegram: TelegramProfile = TelegramProfile()
    vk: VKProfile = VKProfile()
    max: MaxProfile = MaxProfile()
    email: EmailProfile = EmailProfile()
    phone: PhoneProfile = PhoneProfile()

    @cached_property
    def handles(self) -> set[str]:
        """Lower-case @handles and screen names that refer to the agency."""
        found = {
            self.telegram.bot_username,
            self.telegram.channel_username,
            self.vk.screen_name,
            self.max.bot_username,
            self.max.channel_username,
        }
        return {h.lower().lstrip("@") for h in found if h}

    @cached_property
    def _mention_regex(self) -> re.Pattern[str]:
        parts = [name_pattern(name) for name in self.names]
        for handle in sorted(self.handles):
            parts.append(r"@" + re.escape(handle) + r"\b")
            parts.append(r"(?:vk\.com|t\.me|telegram\.me|max\.ru)/" + re.escape(handle) + r"\b")
        if self.vk.group_id:
            gid = self.vk.group_id
            parts.append(rf"\[(?:club|public){gid}\|[^\]]*\]")
            parts.append(rf"vk\.com/(?:club|public){gid}\b")
            parts.append(rf"@(?:club|public){gid}\b")
        return re.compile("|".join(parts), re.IGNORECASE)

    def find_mentions(self, text: str) -> list[str]:
        """Every place in ``text`` that names the agency, by tag, link or one of its names."""
        return [m.group(0) for m in self._mention_regex.finditer(text or "")]

    def is_agency_handle(self, handle: str) -> bool:
        handle = handle.lower().lstrip("@")
        if handle in self.handles:
            return True
        gid = self.vk.group_id
        return bool(gid) and handle in {f"club{gid}", f"public{gid}"}

    def is_agency_email(self, address: str) -> bool:
        return address.strip().lower() in {a.lower() for a in self.email.addresses}


def load_profile(path: Path) -> AgencyProfile:
    return load_model_file(path, AgencyProfile)
