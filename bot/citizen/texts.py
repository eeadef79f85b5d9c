"""Everything the bot says, in plain Russian, in one place (easy to review and to reword)."""

from __future__ import annotations

from typing import TypedDict


class Button(TypedDict):
    id: str
    text: str


#: Button ids. A button's id travels back from the platform (Telegram callback data, the web
#: chat's POST); Telegram allows 64 bytes, so ids stay short and ASCII.
MENU = "menu:main"
ASK = "menu:ask"
APPLY = "menu:apply"
STATUS = "menu:status"
PAY = "menu:pay"
OPERATOR = "menu:operator"
SUBSCRIPTIONS = "menu:subs"
LINK = "menu:link"
APPLY_CONFIRM = "apply:confirm"
APPLY_CANCEL = "apply:cancel"
SERVICE_PREFIX = "service:"
STATUS_PREFIX = "status:"
FEE_PREFIX = "fee:"
#: Ratings arrive after the conversation is closed: ``rate:<conversation id>:<score>``.
RATE_PREFIX = "rate:"

MAIN_MENU: list[list[Button]] = [
    [{"id": ASK, "text": "Задать вопрос"}],
    [{"id": APPLY, "text": "Подать заявление"}],
    [{"id": STATUS, "text": "Статус заявления"}],
    [{"id": PAY, "text": "Оплатить пошлину"}],
    # Two in a row: VK's inline keyboards take at most six rows.
    [{"id": SUBSCRIPTIONS, "text": "Рассылки"}, {"id": LINK, "text": "Связать аккаунты"}],
    [{"id": OPERATOR, "text": "Позвать оператора"}],
]
AFTER_ANSWER: list[list[Button]] = [
    [{"id": MENU, "text": "Главное меню"}, {"id": OPERATOR, "text": "Позвать оператора"}],
]
BACK: list[list[Button]] = [[{"id": MENU, "text": "Главное меню"}]]
CONFIRM: list[list[Button]] = [
    [{"id": APPLY_CONFIRM, "text": "Отправить"}, {"id": APPLY_CANCEL, "text": "Отменить"}],
]

#: Every button label the bot ever shows, so an adapter can turn a pressed id back into text.
LABELS: dict[str, str] = {
    b["id"]: b["text"] for rows in (MAIN_MENU, AFTER_ANSWER, CONFIRM) for row in rows for b in row
}

GREETING = (
    "Здравствуйте! Я бот Департамента городского хозяйства. "
    "Помогу найти ответ, подать заявление, узнать его статус или оплатить пошлину. "
    "Выберите, что нужно, или просто напишите вопрос."
)
MENU_PROMPT = "Чем ещё помочь? Выберите, что нужно, или напишите вопрос."
ASK_PROMPT = "Напишите ваш вопрос одним сообщением. Я поищу ответ."
KB_FOOTER = "Если ответ не помог, нажмите «Позвать оператора»."

HANDOFF_ASKED = (
    "Передаю ваше обращение оператору. Он ответит здесь же, в этом чате. Номер обращения: {number}."
)
HANDOFF_LATE = (
    "Извините, что не ответили сразу. Ваше сообщение передано оператору: он ответит здесь же. "
    "Номер обращения: {number}."
)
HANDOFF_NOT_FOUND = (
    "Я не нашёл точного ответа на ваш вопрос. Передаю его оператору: он ответит здесь же. "
    "Номер обращения: {number}."
)
HANDOFF_VOICE = (
    "Спасибо, я получил ваше голосовое сообщение. Оператор его прослушает и ответит здесь же. "
    "Номер обращения: {number}."
)
HANDOFF_FILE = (
    "Спасибо, файл получен. Я передал его оператору: он ответит здесь же. "
    "Номер обращения: {number}."
)
#: A pop-up on a pressed button while an operator has the conversation (Telegram).
BUTTON_WHILE_OPERATOR = "Вам уже помогает оператор. Ждите ответа в этом чате."

APPLY_SERVICE = "Подать заявление. Шаг 1 из 4: выберите, о чём заявление."
APPLY_ADDRESS = "Шаг 2 из 4: напишите адрес, например: ул. Ленина, д. 5."
APPLY_DESCRIPTION = "Шаг 3 из 4: коротко опишите, что случилось и что нужно сделать."
APPLY_PHONE = "Шаг 4 из 4: напишите телефон для связи, например: +7 900 123-45-67."
APPLY_BAD_PHONE = (
    "Не получилось прочитать номер. Напишите 10 или 11 цифр, например: +7 900 123-45-67."
)
APPLY_TOO_SHORT = "Напишите, пожалуйста, чуть подробнее."
APPLY_CHOOSE_SERVICE = "Выберите вид заявления кнопкой ниже."
APPLY_CHECK = (
    "Проверьте заявление:\n"
    "Вид: {service}\nАдрес: {address}\nЧто случилось: {description}\nТелефон: {phone}\n"
    "Всё верно?"
)
APPLY_DONE = (
    "Заявление принято. Его номер: {number}. "
    "Сохраните номер: по нему можно узнать статус в меню «Статус заявления»."
)
APPLY_CANCELLED = "Заявление не отправлено. Чем ещё помочь?"

STATUS_PROMPT = "Напишите номер заявления. Он выглядит так: З-2026-000042."
STATUS_PICK = "Нажмите на номер заявления. Или напишите номер сами, вот так: З-2026-000042."
STATUS_FOUND = "Заявление {number} ({service}), подано {created}. Статус: {status}."
STATUS_NOT_FOUND = (
    "Не нашёл среди ваших заявлений заявление с номером {number}. "
    "Проверьте номер: он выглядит так: З-2026-000042."
)
#: The status labels and the history lines are in ``inbox.application_texts`` (the agency's
#: notifications use them too). «Отправить сведения» under a «more information needed» notice:
SEND_INFO_LABEL = "Отправить сведения"
STATUS_SEND_INFO = (
    "Напишите сведения по заявлению {number} одним сообщением. "
    "Можно приложить фото или файл. Их получит оператор и ответит здесь же."
)

PAY_PICK = "Выберите, за что платите."
PAY_LINK = (
    "{title}: {amount} руб.\n"
    "Оплатить можно по ссылке: {url}\n"
    "Или отсканируйте QR-код камерой телефона. Номер платежа: {number}."
)

RATE_PROMPT = (
    "Обращение {number} закрыто. Оцените, пожалуйста, как мы помогли: от 1 (плохо) до 5 (отлично)."
)
RATE_THANKS = "Спасибо за оценку! Она помогает нам работать лучше."
RATE_ALREADY = "Вы уже оценили это обращение. Спасибо!"
#: A refused press (bot/citizen/rating.py): not the citizen's conversation, or a made-up one.
RATE_REFUSED = (
    "Эту оценку мы не можем принять. Оценить можно только своё обращение: "
    "мы пришлём вопрос об оценке, когда его закроем."
)
#: ...or the citizen's own conversation before it was closed and the question was sent.
RATE_NOT_YET = (
    "Оценить обращение можно после того, как его закроют. Тогда мы пришлём вопрос об оценке."
)

#: Linking two chat channels into one citizen (``handlers/link.py``, ``inbox.identity_links``).
LINK_CODE = (
    "Код для связи аккаунтов: {code}. Отправьте его боту в другом мессенджере "
    "(Telegram, ВКонтакте, MAX или чат на сайте) в течение {minutes} минут. "
    "Тогда мы будем видеть все ваши обращения вместе. Никому не сообщайте этот код."
)
LINK_DONE = (
    "Готово: аккаунты связаны. Оператор видит все ваши обращения вместе. "
    "Новости по заявлениям приходят туда, где вы их подали."
)
LINK_WRONG = (
    "Код не подошёл: он неверный, устарел или уже использован. "
    "Попросите новый: напишите «Связать аккаунты» в другом мессенджере."
)
LINK_SELF = "Этот код выдан здесь же. Отправьте его боту в другом мессенджере."
LINK_TOO_MANY = "Слишком много неверных кодов. Попробуйте снова через час."

FOREIGN_HANDOFF = {
    "ru": "Здравствуйте! Мы получили ваше сообщение и передали его оператору. Он ответит здесь же.",
    "en": (
        "Hello! We have received your message and passed "
        "it to an operator, who will answer you here."
    ),
    "uz": (
        "Assalomu alaykum! Xabaringiz qabul qilindi va operatorga "
        "topshirildi. U sizga shu yerda javob beradi."
    ),
    "tg": (
        "Ассалому алейкум! Паёми шумо қабул шуд ва ба оператор "
        "супорида шуд. Ӯ ба шумо дар ҳамин ҷо ҷавоб медиҳад."
    ),
    "kk": (
        "Сәлеметсіз бе! Хабарламаңыз қабылданып, операторға берілді. "
        "Ол сізге осы жерде жауап береді."
    ),
}
LANGUAGE_NAMES = {"en": "английский", "uz": "узбекский", "tg": "таджикский", "kk": "казахский"}


def rating_buttons(conversation_id: int) -> list[list[Button]]:
    return [[{"id": f"{RATE_PREFIX}{conversation_id}:{n}", "text": str(n)} for n in range(1, 6)]]
