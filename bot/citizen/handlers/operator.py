"""Calling an operator, at any moment; voice, files and late messages go to an operator too."""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.router import Router, button, has_attachment, typed

router = Router("operator")
quiet = Router("operator-mode")

#: Typed requests for a person: «оператор», «позовите специалиста», «можно живого человека?».
#: The word must end a short message, so «сколько человек можно прописать» stays a question.
CALL_OPERATOR = (
    r"^\W*(?:[\w-]+\W+){0,4}?"
    r"(оператор\w*|специалист\w*|сотрудник\w*|живо\w*\s+человек\w*|человека?)(?:\W+пожалуйста)?\W*$"
)


def _in_operator_mode(turn: Turn) -> bool:
    return turn.state.mode == "operator" or turn.conversation.assignee_id is not None


@quiet.on(_in_operator_mode)
def stay_quiet(turn: Turn) -> None:
    """An operator has the conversation: the message waits for them; the bot says nothing."""


@router.on(lambda t: not _in_operator_mode(t) and t.input.late)
def late(turn: Turn) -> None:
    """Processed long after it arrived (``process_pending`` after an outage): the bot does not
    answer a stale message out of its context; a person reads it, the citizen is told so."""
    turn.handoff("a late message: processed long after it arrived", texts.HANDOFF_LATE)


@router.on(lambda t: not _in_operator_mode(t), button(texts.OPERATOR))
@router.on(lambda t: not _in_operator_mode(t), typed(CALL_OPERATOR))
def call_operator(turn: Turn) -> None:
    turn.handoff("citizen asked for an operator", texts.HANDOFF_ASKED)


@router.on(lambda t: not _in_operator_mode(t), has_attachment("voice", "audio", "video_note"))
def voice(turn: Turn) -> None:
    """The bot does not transcribe voice: an operator listens to it (the file stays attached)."""
    turn.handoff("voice message: an operator must listen to it", texts.HANDOFF_VOICE)


@router.on(
    lambda t: not _in_operator_mode(t) and not t.input.text.strip() and t.input.button is None,
    has_attachment("photo", "document", "video", "animation", "location", "contact"),
)
def file_without_text(turn: Turn) -> None:
    turn.handoff("a file without text: an operator must look at it", texts.HANDOFF_FILE)
