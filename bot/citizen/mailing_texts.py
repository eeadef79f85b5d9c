"""What the bot says about mailings and consent, in plain Russian (``handlers/mailings.py``)."""

from __future__ import annotations

#: Button ids (Telegram allows 64 bytes of callback data; topic and area ids are ≤ 30).
TOPIC_PREFIX = "sub:"
AREA_PREFIX = "suba:"
FREQUENCY_PREFIX = "subf:"
AGREE_PREFIX = "subok:"
STOP_ALL = "subs:stop"
ALL_AREAS = "all"

TOPICS_PROMPT = (
    "Рассылки: мы напишем сюда, когда будет что-то важное по теме. Выберите тему.\n"
    "Отписаться можно в любой момент: напишите «стоп»."
)
MY_SUBSCRIPTIONS = "Ваши подписки: {items}."
AREA_PROMPT = "Выберите район. Или «Весь город», чтобы получать новости всех районов."
ALL_AREAS_LABEL = "Весь город"
FREQUENCY_PROMPT = "Как часто присылать?"
FREQUENCY_LABELS = {"now": "Сразу", "daily": "Раз в день", "weekly": "Раз в неделю"}
CONSENT_PROMPT = "Прочитайте и подтвердите согласие:\n{wording}"
AGREE_LABEL = "Согласен"
SUBSCRIBED = (
    "Готово: вы подписаны на рассылку «{topic}» ({frequency}). "
    "Отписаться можно в любой момент: напишите «стоп»."
)
STOP_ALL_LABEL = "Отписаться от всех"
STOPPED = (
    "Вы отписались от всех рассылок. Согласие на сообщения от нас отозвано. "
    "Ответы на ваши обращения и новости ваших заявлений будут приходить, как раньше."
)
NOTHING_TO_STOP = "У вас нет подписок. Мы не пишем вам первыми."
UNSUBSCRIBED = "Вы отписались от рассылки «{topic}». Больше её не пришлём."
UNKNOWN = "Эта подписка уже не действует. Ваши подписки: в меню «Рассылки»."
