"""VK Callback API events and monitored post objects → normalized events.

Formats: https://dev.vk.com/ru/api/callback/getting-started (event envelope ``type``,
``event_id``, ``object``, ``group_id``, ``secret``); wall post and comment objects as in
``wall.get`` / ``newsfeed.search`` answers.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from bot.citizen.texts import RATE_PREFIX
from core.events import Attachment, Author, Channel, Facts, InboundEvent, PayloadError, Place
from rules.profile import AgencyProfile

#: Peer ids above this are group chats (VK messages API).
CHAT_PEER_OFFSET = 2_000_000_000
_LINK_MENTION = re.compile(r"\[((?:club|public|id)\d+|[A-Za-z0-9_.]+)\|[^\]]*\]")
_SERVICE_TYPES = {
    "confirmation", "message_typing_state", "message_allow", "message_deny", "message_read",
    "message_event", "wall_reply_delete", "wall_reply_restore", "group_join", "group_leave",
    "like_add", "like_remove", "photo_new", "audio_new", "video_new", "board_post_delete",
}  # fmt: skip
_OWN_TYPES = {"message_reply", "message_edit"}


def parse_vk(data: dict[str, Any], profile: AgencyProfile) -> InboundEvent:
    """A Callback API event (has ``type``) or a wall post object found by monitoring."""
    if not isinstance(data, dict):
        raise PayloadError("not a VK event: expected a JSON object")
    if "type" in data:
        return _callback_event(data, profile)
    if {"id", "owner_id", "date"} <= data.keys():
        return _post_event(data, profile, external_id=None, raw=data)
    raise PayloadError("not a VK Callback API event (no 'type') nor a wall post object")


def _callback_event(data: dict[str, Any], profile: AgencyProfile) -> InboundEvent:
    kind = data["type"]
    obj = data.get("object") or {}
    if not isinstance(obj, dict) or not isinstance(kind, str):
        raise PayloadError("VK event: 'type' must be a string and 'object' an object")
    event_id = str(data.get("event_id") or f"{kind}:{data.get('group_id')}")
    if kind == "message_new":
        message = obj.get("message", obj)  # API >= 5.103 wraps the message in object.message
        if not isinstance(message, dict):
            raise PayloadError("VK message_new: 'object.message' must be an object")
        return _message_event(message, profile, event_id, data)
    if kind in ("wall_reply_new", "wall_reply_edit"):
        return _comment_event(obj, profile, event_id, data)
    if kind == "wall_post_new":
        return _post_event(obj, profile, external_id=event_id, raw=data)
    author_id = obj.get("from_id") or obj.get("user_id") or data.get("group_id") or 0
    place = Place.service
    is_own = kind in _OWN_TYPES
    return InboundEvent(
        channel=Channel.vk,
        external_id=event_id,
        thread_key=f"vk:peer:{obj.get('peer_id', author_id)}",
        author=Author(external_id=str(author_id)),
        text=str(obj.get("text") or ""),
        published_at=_date(obj.get("date")),
        facts=Facts(
            place=place,
            is_own=is_own,
            extra={
                "event_type": kind,
                "message_id": obj.get("id"),
                "random_id": obj.get("random_id"),
            },
        ),
        raw=data,
    )


def _message_event(
    message: dict[str, Any], profile: AgencyProfile, event_id: str, raw: dict[str, Any]
) -> InboundEvent:
    from_id = _int(message, "from_id")
    peer_id = _int(message, "peer_id", default=from_id)
    text = str(message.get("text") or "")
    in_chat = peer_id > CHAT_PEER_OFFSET
    button = _button_id(message.get("payload"))
    place = Place.group if in_chat else Place.private
    if not in_chat and button is not None and button.startswith(RATE_PREFIX):
        place = Place.service  # a rating press opens no conversation (as in Telegram)
    return InboundEvent(
        channel=Channel.vk,
        external_id=event_id,
        thread_key=f"vk:peer:{peer_id}:from:{from_id}" if in_chat else f"vk:peer:{peer_id}",
        author=Author(external_id=str(from_id)),
        text=text,
        attachments=_attachments(message.get("attachments")),
        published_at=_date(message.get("date")),
        facts=Facts(
            place=place,
            is_own=_is_community(from_id, profile),
            is_public=False,
            mentions=_link_mentions(text),
            extra={
                "message_id": message.get("id"),
                "event_type": "message_new",
                "button": button,
            },
        ),
        reply_target={"peer_id": peer_id},
        raw=raw,
    )


def _comment_event(
    obj: dict[str, Any], profile: AgencyProfile, event_id: str, raw: dict[str, Any]
) -> InboundEvent:
    from_id = _int(obj, "from_id")
    owner_id = _int(obj, "post_owner_id", default=_int(obj, "owner_id", default=0))
    post_id = _int(obj, "post_id")
    comment_id = _int(obj, "id")
    text = str(obj.get("text") or "")
    official = _is_community(owner_id, profile)
    # The community answering a citizen's comment belongs to that citizen's thread.
    thread_author = from_id
    if _is_community(from_id, profile) and obj.get("reply_to_user"):
        thread_author = _int(obj, "reply_to_user")
    return InboundEvent(
        channel=Channel.vk,
        external_id=event_id,
        thread_key=f"vk:wall{owner_id}_{post_id}:from:{thread_author}",
        author=Author(external_id=str(from_id)),
        text=text,
        attachments=_attachments(obj.get("attachments")),
        published_at=_date(obj.get("date")),
        facts=Facts(
            place=Place.post_comment,
            is_own=_is_community(from_id, profile),
            reply_to_official=official,
            on_agency_page=official,
            is_public=True,
            mentions=_link_mentions(text),
            extra={"comment_id": comment_id, "event_type": raw.get("type", "wall_reply_new")},
        ),
        reply_target={"owner_id": owner_id, "post_id": post_id, "reply_to_comment": comment_id},
        source_url=f"https://vk.com/wall{owner_id}_{post_id}?reply={comment_id}",
        raw=raw,
    )


def _post_event(
    post: dict[str, Any], profile: AgencyProfile, external_id: str | None, raw: dict[str, Any]
) -> InboundEvent:
    owner_id = _int(post, "owner_id")
    post_id = _int(post, "id")
    from_id = _int(post, "from_id", default=owner_id)
    text = str(post.get("text") or "")
    by_agency = _is_community(from_id, profile)
    on_agency_wall = _is_community(owner_id, profile)
    return InboundEvent(
        channel=Channel.vk,
        external_id=external_id or f"post:{owner_id}_{post_id}",
        thread_key=f"vk:wall{owner_id}_{post_id}",
        author=Author(external_id=str(from_id)),
        text=text,
        attachments=_attachments(post.get("attachments")),
        published_at=_date(post.get("date")),
        facts=Facts(
            place=Place.official_post if by_agency else Place.public_post,
            is_own=by_agency,
            on_agency_page=on_agency_wall and not by_agency,
            is_public=True,
            mentions=_link_mentions(text),
            extra={"post_type": post.get("post_type")},
        ),
        reply_target={"owner_id": owner_id, "post_id": post_id},
        source_url=f"https://vk.com/wall{owner_id}_{post_id}",
        raw=raw,
    )


def _button_id(payload: Any) -> str | None:
    """The id of a keyboard button the citizen pressed: our buttons carry ``{"id": …}``."""
    if not isinstance(payload, str):
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, a huge number, or nested too deeply
        return None
    button = data.get("id") if isinstance(data, dict) else None
    return str(button) if button is not None else None


def _is_community(vk_id: int, profile: AgencyProfile) -> bool:
    return profile.vk.group_id is not None and vk_id == -profile.vk.group_id


def _link_mentions(text: str) -> list[str]:
    return [m.group(1) for m in _LINK_MENTION.finditer(text)]


def _attachments(items: Any) -> list[Attachment]:
    found: list[Attachment] = []
    for item in items or []:
        if not isinstance(item, dict) or "type" not in item:
            continue
        kind = str(item["type"])
        body = item.get(kind)
        if not isinstance(body, dict):
            body = {}
        ref = None
        if "owner_id" in body and "id" in body:
            ref = f"{kind}{body['owner_id']}_{body['id']}"
        found.append(Attachment(kind=kind, name=body.get("title"), ref=body.get("url") or ref))
    return found


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or value is None:
        raise PayloadError(f"VK object: '{key}' is missing")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PayloadError(f"VK object: '{key}' must be an integer, got {value!r}") from None


def _date(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise PayloadError(f"VK object: 'date' must be a Unix time, got {value!r}") from None
