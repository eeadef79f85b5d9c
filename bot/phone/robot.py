"""What the voice robot says next, for one phone-robot event.

Every voice choice has a DTMF twin: the menu below is read out, and saying «дороги и дворы»
leads to the same place as pressing 2. «0» or «оператор» hands the call to a person. Free
speech is answered from the knowledge base's short answers; when the base has no confident
answer, the robot does not guess and hands over to an operator. Calls are taken 24/7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from bot.phone.schema import PhoneEventType
from core.events import InboundEvent
from inbox.models import Application
from knowledge_base.search import KnowledgeBase, load_synonym_groups
from knowledge_base.store import KnowledgeBaseProvider, as_provider


class Action(StrEnum):
    listen = "listen"  # say the text, then wait for speech or keys
    transfer = "transfer"  # say the text, then put the call through to the operators' line
    none = "none"  # nothing to say (call ended, recording arrived)


class Step(StrEnum):
    """What the robot asked last, kept in the meta of its last message in the conversation."""

    menu = "menu"
    topic = "topic"  # a topic was chosen; the next question is searched in it first
    status = "status"  # waits for an application number


@dataclass(frozen=True)
class Choice:
    digit: str
    title: str
    #: Word stems that pick this choice by voice in a short phrase («дороги и дворы»).
    stems: tuple[str, ...]
    #: The knowledge-base topic the choice narrows the search to.
    topic: str | None = None
    step: Step = Step.topic


OPERATOR = Choice("0", "оператор", ("оператор", "человек", "специалист", "соедин"))
MENU: tuple[Choice, ...] = (
    Choice("1", "вопросы ЖКХ", ("жкх", "коммунал", "жилищ"), topic="ЖКХ"),
    Choice("2", "дороги и дворы", ("дорог", "двор"), topic="Дворы и дороги"),
    Choice("3", "статус заявления", ("статус", "заявлен"), step=Step.status),
    OPERATOR,
)
#: A phrase this short may be a menu choice; a longer one is a question for the base.
CHOICE_MAX_WORDS = 4
#: Words that may surround a choice in speech («мне про ЖКХ», «вопросы по дорогам»).
CHOICE_FILLERS = frozenset(
    ("вопрос", "вопросы", "вопросу", "по", "про", "о", "об", "и", "а", "мне", "меня", "нужен",
     "нужна", "нужно", "хочу", "узнать", "пожалуйста", "интересует", "мой", "моё", "мое")
)  # fmt: skip
#: Below this ASR confidence the robot asks again instead of answering something else.
MIN_CONFIDENCE = 0.5

MENU_KEYS = ", ".join(f"{c.digit} — {c.title}" for c in MENU)
GREETING = (
    "Здравствуйте! Это {agency}. Скажите коротко, что случилось. Или нажмите цифру: "
    + MENU_KEYS
    + "."
)
TOPIC_PROMPT = "Хорошо, {title}. Скажите коротко, что случилось."
STATUS_PROMPT = "Назовите номер заявления. Или наберите его цифрами и нажмите решётку."
STATUS_FOUND = "Заявление {number}. {status}"
STATUS_NOT_FOUND = "Не нашёл такое заявление. Проверьте номер или нажмите 0 для связи с оператором."
AFTER_ANSWER = "Если нужна помощь человека, нажмите 0."
TO_OPERATOR = "Сейчас соединю вас с оператором. Не кладите трубку."
NO_ANSWER = "Я не знаю точного ответа. Сейчас соединю вас с человеком. Не кладите трубку."
NOT_HEARD = "Простите, я не расслышал. Повторите, пожалуйста, или нажмите цифру: " + MENU_KEYS + "."
NO_SUCH_DIGIT = "Такой цифры нет. Нажмите цифру: " + MENU_KEYS + "."
#: Whole short sentences: a bare «в работе» after a long number reads as officialese.
STATUS_LABELS = {
    "submitted": "Его приняли. Скоро его посмотрят.",
    "in_progress": "Сейчас оно в работе. Мы сообщим, когда будет ответ.",
    "info_needed": "Нам нужны от вас сведения. Мы написали вам, какие именно.",
    "done": "Ответ готов, мы его вам отправили.",
    "refused": "В нём отказали. Причину и срок мы написали вам в сообщении.",
}
STATUS_UNKNOWN = "Мы нашли его, но не знаем статус. Нажмите 0, чтобы спросить оператора."


@dataclass
class RobotReply:
    say: str | None
    action: Action = Action.listen
    step: Step = Step.menu
    choice: Choice | None = None
    kb_entry: str | None = None
    #: The call goes to a person (workflow.handoff).
    handoff: bool = False
    handoff_reason: str | None = None
    menu: list[dict[str, str]] = field(
        default_factory=lambda: [{"digit": c.digit, "title": c.title} for c in MENU]
    )

    def meta(self) -> dict[str, Any]:
        return {
            "menu": self.menu, "action": self.action.value, "phone_step": self.step.value,
            "choice": self.choice.digit if self.choice else None, "kb_entry": self.kb_entry,
        }  # fmt: skip


class Robot:
    """The robot over ``kb``: the app's shared provider (an edited entry is said from the next
    call event on) or a fixed ``KnowledgeBase``."""

    def __init__(self, kb: KnowledgeBase | KnowledgeBaseProvider, agency: str) -> None:
        self._kb = as_provider(kb)
        self.agency = agency
        #: Per-topic indexes, derived from the knowledge base they were built from.
        self._topics: tuple[KnowledgeBase | None, dict[str, KnowledgeBase]] = (None, {})

    @property
    def kb(self) -> KnowledgeBase:
        """The current knowledge base."""
        return self._kb.get()

    def reply(
        self, session: Session, event: InboundEvent, step: Step, topic: str | None
    ) -> RobotReply:
        """The answer to ``event``; ``step`` and ``topic`` are where the call stands."""
        kind = event.facts.extra.get("event_type")
        if kind == PhoneEventType.call_started:
            return RobotReply(GREETING.format(agency=self.agency))
        if kind in (PhoneEventType.call_ended, PhoneEventType.recording):
            return RobotReply(None, action=Action.none, menu=[])
        if kind == PhoneEventType.dtmf:
            return self._keys(session, str(event.facts.extra.get("digits") or ""), step)
        confidence = event.facts.extra.get("confidence")
        if confidence is not None and confidence < MIN_CONFIDENCE:
            return RobotReply(NOT_HEARD, step=step)
        return self._speech(session, event.text, step, topic)

    def _keys(self, session: Session, digits: str, step: Step) -> RobotReply:
        choice = next((c for c in MENU if c.digit == digits), None)
        if choice is not None:
            return self.choose(choice)
        number = digits.rstrip("#")
        if step is Step.status or (digits.endswith("#") and len(number) > 1):
            return self._status(session, number)
        return RobotReply(NO_SUCH_DIGIT, step=step)

    def _speech(self, session: Session, text: str, step: Step, topic: str | None) -> RobotReply:
        choice = voice_choice(text)
        if choice is not None:
            return self.choose(choice)
        if step is Step.status and re.search(r"\d", text):
            return self._status(session, text)
        return self._answer(text, topic)

    def choose(self, choice: Choice) -> RobotReply:
        """The same reply for a key press and for its voice twin."""
        if choice is OPERATOR:
            return RobotReply(
                TO_OPERATOR, action=Action.transfer, choice=choice, handoff=True,
                handoff_reason="звонящий попросил оператора", menu=[],
            )  # fmt: skip
        if choice.step is Step.status:
            return RobotReply(STATUS_PROMPT, step=Step.status, choice=choice)
        return RobotReply(TOPIC_PROMPT.format(title=choice.title), step=Step.topic, choice=choice)

    def _answer(self, text: str, topic: str | None) -> RobotReply:
        kb = self.kb
        answer = self._topic_kb(kb, topic).answer(text) if topic else None
        if answer is None or answer.handoff:
            answer = kb.answer(text)
        if answer.handoff or answer.hit is None:
            return RobotReply(
                NO_ANSWER, action=Action.transfer, handoff=True, menu=[],
                handoff_reason=f"нет уверенного ответа в базе знаний ({answer.reason})",
            )  # fmt: skip
        entry = answer.hit.entry
        return RobotReply(f"{spoken(entry.short_answer)} {AFTER_ANSWER}", kb_entry=entry.id)

    def _status(self, session: Session, said: str) -> RobotReply:
        digits = re.sub(r"\D", "", said)
        application = find_application(session, digits) if len(digits) >= 4 else None
        if application is None:
            return RobotReply(STATUS_NOT_FOUND, step=Step.status)
        status = STATUS_LABELS.get(application.status, STATUS_UNKNOWN)
        return RobotReply(STATUS_FOUND.format(number=application.number, status=status))

    def _topic_kb(self, kb: KnowledgeBase, topic: str) -> KnowledgeBase:
        """The index of ``kb``'s entries of ``topic``; rebuilt when ``kb`` was replaced."""
        built_from, by_topic = self._topics
        if built_from is not kb:
            by_topic = {}
            self._topics = (kb, by_topic)
        if topic not in by_topic:
            entries = [e for e in kb.entries if e.topic == topic] or kb.entries
            by_topic[topic] = KnowledgeBase(
                entries, config=kb.config, synonym_groups=load_synonym_groups()
            )
        return by_topic[topic]


def spoken(short_answer: str) -> str:
    """A short answer for the ear: sentences that send the caller to private messages (written
    for chats and comments) are left out; the operator on «0» takes their place."""
    sentences = re.split(r"(?<=[.!?])\s+", short_answer.strip())
    kept = [s for s in sentences if "личн" not in s.lower()]
    return " ".join(kept) if kept else short_answer.strip()


def voice_choice(text: str) -> Choice | None:
    """The menu choice ``text`` names: «оператор» anywhere in it, or a short phrase of a
    choice's words («дороги и дворы», «мне про ЖКХ»). «Яма во дворе» is a question, not a choice.
    """
    words = re.findall(r"\w+", text.lower())
    if any(word.startswith(stem) for word in words for stem in OPERATOR.stems):
        return OPERATOR
    if not words or len(words) > CHOICE_MAX_WORDS:
        return None
    for choice in MENU:
        named = [w for w in words if any(w.startswith(stem) for stem in choice.stems)]
        if named and all(w in CHOICE_FILLERS or w in named for w in words):
            return choice
    return None


def find_application(session: Session, digits: str) -> Application | None:
    """By the digits of its number: «З-2026-000042» is 2026000042, or just 000042."""
    candidates = session.exec(
        select(Application).where(col(Application.number).like(f"%{digits[-4:]}"))
    ).all()
    for application in candidates:
        own = re.sub(r"\D", "", application.number or "")
        if own == digits or (len(digits) >= 6 and own.endswith(digits)):
            return application
    return None
