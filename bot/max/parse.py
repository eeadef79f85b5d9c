"""MAX Bot API ``Update`` → normalized event, validated with ``maxapi``'s own models.

Format: https://dev.max.ru/docs-api/objects/Update (``update_type``, ``timestamp`` in
milliseconds, and per type ``message``, ``callback``, ``chat_id``, ``user``...). Where an item
stands decides what it is (docs/max.md):

- ``message_created`` in a dialog with the bot (``recipient.chat_type == "dialog"``) is an
  appeal; a pressed inline button (``message_callback``) is the citizen's turn there too;
- ``comment_created`` under a post of the agency's channel is a comment on an official post;
  under another channel's post it counts only if it mentions the agency;
- in a group chat (``chat_type == "chat"``) where the bot is a member, a message counts only if
  it mentions the agency (``user_mention`` markup of the bot, ``@handle``, a max.ru link, or
  one of the agency's names);
- ``bot_started`` (the citizen pressed «Начать» in a new dialog) is the citizen's first turn,
  as Telegram's ``/start`` and VK's «Начать» are: the bot greets with its menu;
- a post of the agency's channel is its own; ``bot_added``, ``dialog_*``, ``user_added`` and
  other non-messages are service events.

An Update has no id of its own: the dedupe key (``external_id``) is the message's ``mid``,
the callback's ``callback_id``, or, for service updates, their type, chat, user and time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from maxapi.types.comment import CommentMessage
from maxapi.types.message import Message
from maxapi.types.updates import UpdateUnionAdapter
from maxapi.types.updates.message_callback import MessageCallback
from maxapi.types.updates.message_created import MessageCreated
from maxapi.types.updates.message_edited import MessageEdited
from maxapi.types.users import User
from pydantic import ValidationError

from bot.citizen.texts import RATE_PREFIX
from core.bounded import INT64_MAX
from core.events import Attachment, Author, Channel, Facts, InboundEvent, PayloadError, Place
from rules.profile import AgencyProfile

#: Comment updates ``maxapi`` 1.2.3 has no update class for; validated as ``CommentMessage``.
COMMENT_TYPES = ("comment_created", "comment_edited")
#: Service updates about a comment, with no text to answer.
COMMENT_SERVICE_TYPES = ("comment_removed",)
_MEDIA = ("image", "video", "audio", "file", "sticker", "share", "contact", "location")


def parse_max(
    data: dict[str, Any], profile: AgencyProfile, received_at: datetime | None = None
) -> InboundEvent:
    """Normalize one Update; raises ``PayloadError`` for anything that is not one."""
    if not isinstance(data, dict):
        raise PayloadError("not a MAX Update: expected a JSON object")
    kind = data.get("update_type")
    if not isinstance(kind, str) or not kind:
        raise PayloadError("not a MAX Update: no update_type")
    if not isinstance(data.get("timestamp"), int) or isinstance(data.get("timestamp"), bool):
        raise PayloadError("not a MAX Update: 'timestamp' must be an integer (milliseconds)")
    _check_numbers(data)
    if kind in COMMENT_TYPES:
        return _comment_event(data, kind, profile)
    if kind in COMMENT_SERVICE_TYPES:
        return _service_event(data, kind, received_at)
    if kind == "bot_started":
        started = _bot_started(data, received_at)
        if started is not None:
            return started
    try:
        update = UpdateUnionAdapter.validate_python(data)
    except ValidationError as exc:
        if _unknown_type(exc):
            return _service_event(data, kind, received_at)
        raise PayloadError(f"not a valid MAX Update: {_first_error(exc)}") from None
    if isinstance(update, MessageCreated | MessageEdited):
        return _message_event(update.message, data, kind, profile)
    if isinstance(update, MessageCallback):
        pressed = _button_press(update, data)
        if pressed is not None:
            return pressed
    return _service_event(data, kind, received_at)


def _check_numbers(data: dict[str, Any]) -> None:
    """MAX's ids and timestamps are 64-bit: a larger number is no MAX Update, and would end as
    an overflow in a driver or a request MAX refuses (``core/bounded.py``)."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
            raise PayloadError("MAX Update: a number larger than 64 bits")


def _unknown_type(exc: ValidationError) -> bool:
    return any(e["type"] == "union_tag_invalid" for e in exc.errors())


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{where}: {err['msg']}"


def _date(milliseconds: int | None, default: datetime | None = None) -> datetime:
    if milliseconds is None:
        return default or datetime.now(UTC)
    try:
        return datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"MAX Update: timestamp {milliseconds} is out of range") from None


def _author(user: User | None, fallback: str = "max") -> Author:
    if user is None:
        return Author(external_id=fallback)
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip()
    return Author(
        external_id=str(user.user_id),
        display_name=name or None,
        username=user.username,
        is_bot=user.is_bot,
    )


def _is_own_bot(user: User | None, profile: AgencyProfile) -> bool:
    own = profile.max
    if user is None or not user.is_bot:
        return False
    if own.bot_user_id is not None:
        return user.user_id == own.bot_user_id
    return bool(own.bot_username and (user.username or "").lower() == own.bot_username.lower())


def _service_event(data: dict[str, Any], kind: str, received_at: datetime | None) -> InboundEvent:
    """A non-message update: no response needed; kept in the journal for the record."""
    user = data.get("user") if isinstance(data.get("user"), dict) else None
    callback = data.get("callback") if isinstance(data.get("callback"), dict) else None
    if user is None and callback is not None and isinstance(callback.get("user"), dict):
        user = callback["user"]
    user_id = user.get("user_id") if user else data.get("user_id")
    chat_id = data.get("chat_id")
    key = f"{kind}:{chat_id}:{user_id}:{data.get('timestamp')}"
    if callback is not None and callback.get("callback_id"):
        key = f"callback:{callback['callback_id']}"
    elif chat_id is None and user_id is None:
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
        key = f"{kind}:{digest.hexdigest()[:32]}"
    thread = f"max:user:{user_id}" if user_id is not None else f"max:update:{kind}"
    return InboundEvent(
        channel=Channel.max,
        external_id=key[:255],
        thread_key=thread[:255],
        author=Author(
            external_id=str(user_id if user_id is not None else "max"),
            display_name=str(user.get("name") or "") or None if user else None,
        ),
        published_at=_date(data.get("timestamp"), received_at),
        facts=Facts(place=Place.service, extra={"update_type": kind, "chat_id": chat_id}),
        raw=data,
    )


def _bot_started(data: dict[str, Any], received_at: datetime | None) -> InboundEvent | None:
    """«Начать» pressed in a dialog: a ``/start`` turn, so the bot greets (the deep-link
    ``payload``, if any, kept in ``extra``). Without a chat or a user it stays a service event."""
    user = data.get("user")
    chat_id = data.get("chat_id")
    if not isinstance(user, dict) or not isinstance(chat_id, int) or isinstance(chat_id, bool):
        return None
    user_id = user.get("user_id")
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user.get("is_bot"):
        return None
    name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    start_payload = data.get("payload")
    return InboundEvent(
        channel=Channel.max,
        external_id=f"bot_started:{chat_id}:{user_id}:{data.get('timestamp')}"[:255],
        thread_key=f"max:{chat_id}",
        author=Author(
            external_id=str(user_id),
            display_name=name[:200] or None,
            username=str(user["username"])[:200] if user.get("username") else None,
        ),
        text="/start",
        published_at=_date(data.get("timestamp"), received_at),
        facts=Facts(
            place=Place.private,
            extra={
                "update_type": "bot_started",
                "chat_type": "dialog",
                "start_payload": str(start_payload)[:128] if start_payload else None,
            },
        ),
        reply_target={"chat_id": chat_id},
        raw=data,
    )


def _button_press(update: MessageCallback, data: dict[str, Any]) -> InboundEvent | None:
    """A pressed inline button of the bot in a dialog: the citizen's turn in the dialogue.

    The text is the button's label (operators read «Подать заявление», not ``menu:apply``);
    the payload goes to the bot in ``facts.extra["button"]``. A rating press is feedback on a
    closed conversation, not an appeal, so it is a service event (it opens no conversation).
    """
    callback = update.callback
    message = update.message
    if message is None or message.recipient.chat_type != "dialog" or not callback.payload:
        return None
    chat_id = message.recipient.chat_id
    label = _button_label(data, callback.payload) or callback.payload
    return InboundEvent(
        channel=Channel.max,
        external_id=f"callback:{callback.callback_id}"[:255],
        thread_key=f"max:{chat_id}",
        author=_author(callback.user),
        text=label,
        published_at=_date(callback.timestamp),
        facts=Facts(
            place=Place.service if callback.payload.startswith(RATE_PREFIX) else Place.private,
            extra={
                "update_type": "message_callback",
                "chat_type": "dialog",
                "button": callback.payload,
                "callback_id": callback.callback_id,
            },
        ),
        reply_target={"chat_id": chat_id},
        raw=data,
    )


def _button_label(data: dict[str, Any], payload: str) -> str | None:
    """The label of the button with ``payload`` on the message whose keyboard was pressed."""
    body = (data.get("message") or {}).get("body") or {}
    for attachment in body.get("attachments") or []:
        if not isinstance(attachment, dict) or attachment.get("type") != "inline_keyboard":
            continue
        for row in (attachment.get("payload") or {}).get("buttons") or []:
            for button in row if isinstance(row, list) else []:
                if isinstance(button, dict) and button.get("payload") == payload:
                    return str(button.get("text") or "") or None
    return None


def _message_event(
    msg: Message, data: dict[str, Any], kind: str, profile: AgencyProfile
) -> InboundEvent:
    own = profile.max
    body = msg.body
    if body is None:
        raise PayloadError(f"MAX {kind}: message has no body")
    recipient = msg.recipient
    chat_id = recipient.chat_id
    text = body.text or ""
    attachments = _attachments(data)
    sender = msg.sender
    own_bot = _is_own_bot(sender, profile)
    edited = kind == "message_edited"
    facts = Facts(
        place=Place.group,
        is_own=own_bot,
        is_automatic=bool(sender and sender.is_bot and not own_bot),
        mentions=_explicit_mentions(data, profile),
        extra={"update_type": kind, "chat_type": str(recipient.chat_type), "edited": edited},
    )
    reply_target: dict[str, Any] = {"chat_id": chat_id, "reply_to_message_id": body.mid}
    user_key = sender.user_id if sender else chat_id
    source_url = msg.url_api if (msg.url_api or "").startswith("https://") else None
    if recipient.chat_type == "dialog":
        facts.place = Place.private
        thread_key = f"max:{chat_id}"
    elif recipient.chat_type == "channel":
        official = own.channel_id is not None and chat_id == own.channel_id
        facts.place = Place.official_post if official else Place.public_post
        facts.is_own = official or own_bot
        facts.is_public = True
        thread_key = f"max:{chat_id}:post:{body.mid}"
    else:
        facts.is_public = True
        thread_key = f"max:{chat_id}:user:{user_key}"
    if not text and not attachments:
        facts.place = Place.service
    external_id = f"message:{body.mid}"
    if edited:  # each edit is its own update; the first one keeps the mid
        external_id = f"edited:{body.mid}:{data.get('timestamp')}"
    return InboundEvent(
        channel=Channel.max,
        external_id=external_id[:255],
        thread_key=thread_key[:255],
        author=_author(sender, str(chat_id)),
        text=text,
        attachments=attachments,
        published_at=_date(data.get("timestamp") if edited else msg.timestamp),
        facts=facts,
        reply_target=reply_target,
        source_url=source_url,
        raw=data,
    )


def _comment_event(data: dict[str, Any], kind: str, profile: AgencyProfile) -> InboundEvent:
    """A comment under a channel's post (``comment_created``, ``comment_edited``)."""
    message = data.get("message")
    if not isinstance(message, dict):
        raise PayloadError(f"MAX {kind}: 'message' must be an object")
    try:
        comment = CommentMessage.model_validate(message)
    except ValidationError as exc:
        raise PayloadError(f"not a valid MAX {kind}: message.{_first_error(exc)}") from None
    recipient = comment.recipient
    chat_id = recipient.chat_id
    post_id = recipient.post_id or comment.post_message_id
    if not post_id:
        raise PayloadError(f"MAX {kind}: no recipient.post_id (the commented post)")
    sender = comment.sender
    own = profile.max
    official = own.channel_id is not None and chat_id == own.channel_id
    own_bot = _is_own_bot(sender, profile)
    edited = kind == "comment_edited"
    reply_to = comment.link.message.mid if comment.link is not None else None
    user_key = sender.user_id if sender else "channel"
    external_id = f"comment:{comment.body.mid}"
    if edited:
        external_id = f"comment_edited:{comment.body.mid}:{data.get('timestamp')}"
    return InboundEvent(
        channel=Channel.max,
        external_id=external_id[:255],
        thread_key=f"max:{chat_id}:post:{post_id}:user:{user_key}"[:255],
        author=_author(sender, str(chat_id)),
        text=comment.body.text or "",
        published_at=_date(comment.timestamp),
        facts=Facts(
            place=Place.post_comment,
            # Without a sender the comment is published on behalf of the channel itself.
            is_own=own_bot or (official and sender is None),
            is_automatic=bool(sender and sender.is_bot and not own_bot),
            reply_to_official=official,
            on_agency_page=official,
            is_public=True,
            mentions=_explicit_mentions(data, profile),
            extra={
                "update_type": kind,
                "chat_type": "channel",
                "post_id": post_id,
                "reply_to_comment": reply_to,
                "edited": edited,
            },
        ),
        reply_target={
            "chat_id": chat_id,
            "post_id": post_id,
            "reply_to_message_id": comment.body.mid,
        },
        raw=data,
    )


def _explicit_mentions(data: dict[str, Any], profile: AgencyProfile) -> list[str]:
    """Handles the platform marked in ``body.markup``: user mentions and links."""
    body = (data.get("message") or {}).get("body") or {}
    text = str(body.get("text") or "")
    found: list[str] = []
    for item in body.get("markup") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "user_mention":
            if item.get("user_link"):
                found.append(str(item["user_link"]))
            elif profile.max.bot_user_id is not None and item.get("user_id") == (
                profile.max.bot_user_id
            ):
                found.append(profile.max.bot_username or f"max-user:{item['user_id']}")
            else:
                start, length = item.get("from"), item.get("length")
                if isinstance(start, int) and isinstance(length, int):
                    found.append(text[start : start + length])
        elif item.get("type") == "link" and item.get("url"):
            found.append(str(item["url"]))
    return [_handle_from_link(m) for m in found if m]


def _handle_from_link(value: str) -> str:
    """``https://max.ru/dgh_city`` → ``dgh_city``; ``@dgh_city`` stays."""
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    if value.startswith("max.ru/"):
        return value[len("max.ru/") :].split("/")[0].split("?")[0]
    return value


def _attachments(data: dict[str, Any]) -> list[Attachment]:
    body = (data.get("message") or {}).get("body") or {}
    found: list[Attachment] = []
    for item in body.get("attachments") or []:
        if not isinstance(item, dict) or item.get("type") not in _MEDIA:
            continue
        payload: dict[str, Any] = item["payload"] if isinstance(item.get("payload"), dict) else {}
        kind = str(item["type"])
        ref = payload.get("url") or payload.get("token")
        if kind == "location":
            ref = f"geo:{item.get('latitude')},{item.get('longitude')}"
        found.append(
            Attachment(
                kind="photo" if kind == "image" else kind,
                name=item.get("filename") if isinstance(item.get("filename"), str) else None,
                size=item.get("size") if isinstance(item.get("size"), int) else None,
                ref=str(ref) if ref is not None else None,
            )
        )
    return found
