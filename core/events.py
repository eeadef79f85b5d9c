"""The normalized inbound event: the one type that crosses from channel adapters into the inbox.

Adapters know their platform; the inbox and the rules do not. An adapter therefore states the
platform facts the rules need (where the item was published, whether it is the agency's own,
whether it replies to an official post, which explicit mentions it carries) in ``facts``.
Deciding *whether* an item needs a response is left to ``rules``.

Every model here cleans its strings before validation (``core.codepoints``): a lone surrogate
or a NUL from any channel becomes U+FFFD, so what an adapter journals can always be stored and
processed, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from core.clock import as_utc
from core.codepoints import StorableModel, is_clean_json


class Channel(StrEnum):
    telegram = "telegram"
    vk = "vk"
    email = "email"
    phone = "phone"
    webchat = "webchat"
    max = "max"


class Place(StrEnum):
    """Where the item was published, as far as the response rules care."""

    private = "private"  # a private chat / direct message with the agency or its bot
    email = "email"  # a letter sent to the agency's address
    call = "call"  # a phone call to the agency's robot
    webchat = "webchat"  # the chat on the agency's site
    group = "group"  # a group chat or someone else's public wall
    official_post = "official_post"  # the agency's own official post (channel / community wall)
    post_comment = (
        "post_comment"  # a comment under a post (whose post: see facts.reply_to_official)
    )
    public_post = "public_post"  # a post on someone else's wall or channel (found by monitoring)
    service = "service"  # joins, pins, call-ended, read receipts and other non-messages


#: The longest author name or username kept (the length of the columns that store them).
NAME_LENGTH = 255


class Attachment(StorableModel):
    kind: str  # photo, document, voice, audio, video, sticker, link, recording...
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    #: Where the content can be fetched: a platform file id, a URL, or ``inline:<n>`` for email.
    ref: str | None = None


class Author(StorableModel):
    #: The author's id on the platform (Telegram user id, VK from_id, email address, phone number).
    external_id: str
    display_name: str | None = None
    username: str | None = None
    is_bot: bool = False

    @field_validator("display_name", "username")
    @classmethod
    def _fits(cls, value: str | None) -> str | None:
        """Cut to what the citizen and identity columns hold: PostgreSQL refuses longer
        values, and an email's From name can be any length."""
        return value[:NAME_LENGTH] if value else value


class Facts(StorableModel):
    """Platform facts the adapter observed; the rules decide from these and the text."""

    place: Place
    #: Published by the agency itself (its channel, community, bot, mailbox).
    is_own: bool = False
    #: Automatic mail (auto-reply, bounce, mailing list) or a bot's automatic message.
    is_automatic: bool = False
    #: The item replies to / comments on one of the agency's official posts.
    reply_to_official: bool = False
    #: Published by someone else on the agency's own page (community wall, discussion group).
    on_agency_page: bool = False
    #: Explicit mentions the platform marked: @usernames, links, VK [club…|…] references.
    mentions: list[str] = Field(default_factory=list)
    #: Is the item visible to the public (comments, posts, group chats)?
    is_public: bool = False
    #: Free-form extras (email subject, call id, DTMF digits, language...).
    extra: dict[str, Any] = Field(default_factory=dict)


class InboundEvent(StorableModel):
    """One inbound item, whatever its channel."""

    channel: Channel
    #: Unique per channel; the dedupe key (update_id, VK event_id, Message-ID, robot event id).
    external_id: str
    #: Groups items into one conversation (chat, peer, post+author, email thread root, call).
    thread_key: str
    author: Author
    text: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    published_at: datetime
    facts: Facts
    #: What an outbound reply needs to reach the same place (chat id, reply-to id, peer id...).
    reply_target: dict[str, Any] = Field(default_factory=dict)
    #: A link a person can open to see the original (public post, comment).
    source_url: str | None = None
    #: The native payload as received, kept for audit and reprocessing.
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("published_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class PayloadError(ValueError):
    """A native payload that cannot be understood; the message is shown to the user as is."""


# -- the journal's events, rebuilt without a second validation ------------------------------
NoneType = type(None)
_ATTACHMENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "name": (str, NoneType),
    "mime_type": (str, NoneType),
    "size": (int, NoneType),
    "ref": (str, NoneType),
}
_AUTHOR_FIELDS: dict[str, type | tuple[type, ...]] = {
    "external_id": str,
    "display_name": (str, NoneType),
    "username": (str, NoneType),
    "is_bot": bool,
}
_FACTS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "place": str,
    "is_own": bool,
    "is_automatic": bool,
    "reply_to_official": bool,
    "on_agency_page": bool,
    "mentions": list,
    "is_public": bool,
    "extra": dict,
}
_EVENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "channel": str,
    "external_id": str,
    "thread_key": str,
    "author": dict,
    "text": str,
    "attachments": list,
    "published_at": str,
    "facts": dict,
    "reply_target": dict,
    "source_url": (str, NoneType),
    "raw": dict,
}


def _dumped(data: Any, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """``data`` if it has exactly these fields with values of these JSON types, else ValueError."""
    if not isinstance(data, dict) or data.keys() != fields.keys():
        raise ValueError("not shaped like a dump")
    for name, kind in fields.items():
        if not isinstance(data[name], kind):
            raise ValueError(f"{name} is not {kind}")
    return data


def journalled_event(data: Any) -> InboundEvent:
    """The event the journal keeps (``InboundEvent.model_dump(mode="json")`` of a validated
    event), rebuilt without validating it a second time (~0.2 ms of pydantic per event in the
    worker's profile).

    Only the inbox writes journal rows, from validated events, so their strings are already
    cleaned; this checks that ``data`` has exactly a dump's fields and JSON types and no string
    that needs cleaning, and constructs the models from it (the enums and the date parsed as
    validation would). Anything else (a row from an older version, journalled before strings
    were cleaned, or an edited one) is validated as usual: cleaned, or failing with pydantic's
    clear error.
    """
    if not is_clean_json(data):
        return InboundEvent.model_validate(data)
    try:
        event = _dumped(data, _EVENT_FIELDS)
        facts = _dumped(event["facts"], _FACTS_FIELDS)
        author = _dumped(event["author"], _AUTHOR_FIELDS)
        attachments = [
            Attachment.model_construct(**_dumped(a, _ATTACHMENT_FIELDS))
            for a in event["attachments"]
        ]
        published_at = datetime.fromisoformat(event["published_at"])
        if published_at.tzinfo is None or not all(isinstance(m, str) for m in facts["mentions"]):
            raise ValueError("not as dumped")
        return InboundEvent.model_construct(
            channel=Channel(event["channel"]),
            external_id=event["external_id"],
            thread_key=event["thread_key"],
            author=Author.model_construct(**author),
            text=event["text"],
            attachments=attachments,
            published_at=as_utc(published_at),
            facts=Facts.model_construct(**{**facts, "place": Place(facts["place"])}),
            reply_target=event["reply_target"],
            source_url=event["source_url"],
            raw=event["raw"],
        )
    except ValueError:
        return InboundEvent.model_validate(data)
