"""Telegram Bot API ``Update`` → normalized event, using aiogram's own types.

Where an item stands decides what it is (see shared CHANNELS.md):
- a private chat with the bot is an appeal;
- in the channel's linked discussion group, the automatic forward of a channel post is the
  agency's own post, and a message replying to it (or inside its thread) is a comment;
- elsewhere in groups, an item matters only if it mentions the agency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram.types import CallbackQuery, Message, Update
from pydantic import ValidationError

from bot.citizen.texts import RATE_PREFIX
from core.events import Attachment, Author, Channel, Facts, InboundEvent, PayloadError, Place
from rules.profile import AgencyProfile

_MEDIA = ("photo", "document", "voice", "audio", "video", "video_note", "sticker", "animation")


def parse_update(
    data: dict[str, Any], profile: AgencyProfile, received_at: datetime | None = None
) -> InboundEvent:
    """Normalize one Update; updates without a date are stamped ``received_at`` (default: now)."""
    if not isinstance(data, dict) or "update_id" not in data:
        raise PayloadError("not a Telegram Update: no update_id")
    try:
        update = Update.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PayloadError(f"not a valid Telegram Update: {where}: {err['msg']}") from None
    message = (
        update.message or update.edited_message or update.channel_post or update.edited_channel_post
    )
    if message is None:
        received = received_at or datetime.now(UTC)
        if update.callback_query is not None:
            pressed = _button_press(update, update.callback_query, data, received)
            if pressed is not None:
                return pressed
        return _service_event(update, data, received)
    return _message_event(update, message, data, profile)


def _service_event(update: Update, data: dict[str, Any], received_at: datetime) -> InboundEvent:
    kind = next((k for k in data if k != "update_id"), "unknown")
    user = None
    if update.callback_query:
        user = update.callback_query.from_user
    elif update.my_chat_member:
        user = update.my_chat_member.from_user
    return InboundEvent(
        channel=Channel.telegram,
        external_id=str(update.update_id),
        thread_key=f"tg:user:{user.id}" if user else f"tg:update:{update.update_id}",
        author=Author(external_id=str(user.id) if user else "telegram", is_bot=False),
        published_at=_event_date(update) or received_at,
        facts=Facts(place=Place.service, extra={"update_type": kind}),
        raw=data,
    )


def _button_press(
    update: Update, query: CallbackQuery, data: dict[str, Any], received_at: datetime
) -> InboundEvent | None:
    """A pressed inline button of the bot in a private chat: the citizen's turn in the dialogue.

    The text is the button's label (operators read «Подать заявление», not ``menu:apply``);
    the id goes to the bot in ``facts.extra["button"]``. A rating press is feedback on a closed
    conversation, not an appeal, so it is a service event (it opens no conversation).
    """
    message = query.message
    if not isinstance(message, Message) or message.chat.type != "private" or not query.data:
        return None
    label = query.data
    markup = message.reply_markup
    for row in markup.inline_keyboard if markup else []:
        for key in row:
            if key.callback_data == query.data:
                label = key.text
    user = query.from_user
    return InboundEvent(
        channel=Channel.telegram,
        external_id=str(update.update_id),
        thread_key=f"tg:{message.chat.id}",
        author=Author(
            external_id=str(user.id), display_name=user.full_name, username=user.username
        ),
        text=label,
        published_at=received_at,
        facts=Facts(
            place=Place.service if query.data.startswith(RATE_PREFIX) else Place.private,
            extra={
                "update_type": "callback_query",
                "chat_type": "private",
                "button": query.data,
                "callback_query_id": query.id,
            },
        ),
        reply_target={"chat_id": message.chat.id},
        raw=data,
    )


def _event_date(update: Update) -> datetime | None:
    for obj in (update.my_chat_member, update.chat_member, update.chat_join_request):
        if obj is not None:
            return obj.date
    return None


def _message_event(
    update: Update, msg: Message, data: dict[str, Any], profile: AgencyProfile
) -> InboundEvent:
    tg = profile.telegram
    chat = msg.chat
    text = msg.text or msg.caption or ""
    attachments = _attachments(msg)
    sender = msg.from_user
    own_bot = bool(
        sender
        and sender.is_bot
        and tg.bot_username
        and (sender.username or "").lower() == tg.bot_username.lower()
    )
    from_own_channel = bool(
        msg.sender_chat and tg.channel_id and msg.sender_chat.id == tg.channel_id
    )
    is_own = own_bot or from_own_channel
    facts = Facts(
        place=Place.group,
        is_own=is_own,
        is_automatic=bool(sender and sender.is_bot and not own_bot),
        mentions=_explicit_mentions(msg),
        extra={"chat_type": chat.type, "edited": bool(update.edited_message)},
    )
    reply_target: dict[str, Any] = {"chat_id": chat.id, "reply_to_message_id": msg.message_id}
    source_url = f"https://t.me/{chat.username}/{msg.message_id}" if chat.username else None
    user_key = sender.id if sender else (msg.sender_chat.id if msg.sender_chat else 0)

    if chat.type == "private":
        facts.place = Place.private
        thread_key = f"tg:{chat.id}"
    elif chat.type == "channel":
        official = tg.channel_id is not None and chat.id == tg.channel_id
        facts.place = Place.official_post if official else Place.public_post
        facts.is_own = official
        facts.is_public = True
        thread_key = f"tg:{chat.id}:post:{msg.message_id}"
    elif tg.discussion_group_id is not None and chat.id == tg.discussion_group_id:
        facts.is_public = True
        facts.on_agency_page = True
        root = _official_post_root(msg, tg.channel_id)
        if msg.is_automatic_forward and from_own_channel:
            facts.place = Place.official_post
            thread_key = f"tg:{chat.id}:post:{msg.message_id}"
        elif root is not None:
            facts.place = Place.post_comment
            facts.reply_to_official = True
            thread_key = f"tg:{chat.id}:post:{root}:user:{user_key}"
            reply_target["message_thread_id"] = root
            source_url = _comment_url(msg, tg.channel_username) or source_url
        else:
            thread_key = f"tg:{chat.id}:user:{user_key}"
    else:
        facts.is_public = True
        thread_key = f"tg:{chat.id}:user:{user_key}"
    if not text and not attachments:
        facts.place = Place.service
    return InboundEvent(
        channel=Channel.telegram,
        external_id=str(update.update_id),
        thread_key=thread_key,
        author=_author(msg),
        text=text,
        attachments=attachments,
        published_at=(msg.edit_date or msg.date) if update.edited_message else msg.date,
        facts=facts,
        reply_target=reply_target,
        source_url=source_url,
        raw=data,
    )


def _official_post_root(msg: Message, channel_id: int | None) -> int | None:
    """The discussion-group message id of the official post this message comments on."""
    reply = msg.reply_to_message
    if (
        reply is not None
        and reply.is_automatic_forward
        and reply.sender_chat is not None
        and (channel_id is None or reply.sender_chat.id == channel_id)
    ):
        return reply.message_id
    # A reply to another comment inside the post's thread keeps the thread id of the post.
    if msg.message_thread_id is not None and not msg.is_topic_message:
        return msg.message_thread_id
    return None


def _comment_url(msg: Message, channel_username: str | None) -> str | None:
    reply = msg.reply_to_message
    origin = getattr(reply, "forward_origin", None) if reply else None
    post_id = getattr(origin, "message_id", None)
    if channel_username and post_id:
        return f"https://t.me/{channel_username}/{post_id}?comment={msg.message_id}"
    return None


def _author(msg: Message) -> Author:
    if msg.from_user is not None and not msg.sender_chat:
        user = msg.from_user
        return Author(
            external_id=str(user.id),
            display_name=user.full_name,
            username=user.username,
            is_bot=user.is_bot,
        )
    if msg.sender_chat is not None:
        sc = msg.sender_chat
        return Author(external_id=str(sc.id), display_name=sc.title, username=sc.username)
    return Author(external_id=str(msg.chat.id), display_name=msg.chat.title)


def _explicit_mentions(msg: Message) -> list[str]:
    found: list[str] = []
    for text, entities in ((msg.text, msg.entities), (msg.caption, msg.caption_entities)):
        if not text or not entities:
            continue
        for entity in entities:
            if entity.type == "mention":
                found.append(entity.extract_from(text))  # UTF-16 offsets handled by aiogram
            elif entity.type == "text_mention" and entity.user is not None:
                found.append(entity.user.username or str(entity.user.id))
            elif entity.type == "url":
                found.append(entity.extract_from(text))
            elif entity.type == "text_link" and entity.url:
                found.append(entity.url)
    return [_handle_from_link(m) for m in found]


def _handle_from_link(value: str) -> str:
    """``https://t.me/dgh_city`` → ``dgh_city``; ``@dgh_city`` stays."""
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    for host in ("t.me/", "telegram.me/"):
        if value.startswith(host):
            return value[len(host) :].split("/")[0].split("?")[0]
    return value


def _attachments(msg: Message) -> list[Attachment]:
    found: list[Attachment] = []
    for kind in _MEDIA:
        media = getattr(msg, kind, None)
        if media is None:
            continue
        if isinstance(media, list):  # photo sizes: keep the largest
            media = media[-1]
        found.append(
            Attachment(
                kind=kind,
                name=getattr(media, "file_name", None),
                mime_type=getattr(media, "mime_type", None),
                size=getattr(media, "file_size", None),
                ref=getattr(media, "file_id", None),
            )
        )
    if msg.location is not None:
        found.append(
            Attachment(kind="location", ref=f"geo:{msg.location.latitude},{msg.location.longitude}")
        )
    if msg.contact is not None:
        found.append(Attachment(kind="contact", ref=f"tel:{msg.contact.phone_number}"))
    return found
