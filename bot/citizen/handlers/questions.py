"""Questions: answered from the knowledge base when confident, otherwise an operator answers.

A message in another language is answered with a short note in Russian and in that language
and handed to an operator (the standard: foreign citizens are clients too).
"""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.language import detect_foreign_language
from bot.citizen.router import Router, has_text

router = Router("questions")


@router.on(has_text, lambda t: detect_foreign_language(t.input.text) is not None)
def foreign_language(turn: Turn) -> None:
    language = detect_foreign_language(turn.input.text)
    assert language is not None
    note = (
        texts.FOREIGN_HANDOFF["ru"]
        + "\n\n"
        + texts.FOREIGN_HANDOFF.get(language, texts.FOREIGN_HANDOFF["en"])
    )
    name = texts.LANGUAGE_NAMES.get(language, language)
    turn.handoff(f"message in a foreign language: {language} ({name})", note)


@router.on(has_text)
def question(turn: Turn) -> None:
    answer = turn.context.knowledge_base().answer(turn.input.text)
    if answer.handoff or answer.hit is None:
        turn.handoff(f"no confident answer in the knowledge base ({answer.reason})",
                     texts.HANDOFF_NOT_FOUND)  # fmt: skip
        return
    hit = answer.hit
    text = f"{hit.entry.full_answer.strip()}\n\n{texts.KB_FOOTER}"
    turn.state.step = None
    turn.say(
        text,
        texts.AFTER_ANSWER,
        kb_entry_id=hit.entry_id,
        kb_confidence=round(hit.confidence, 3),
    )


@router.on(lambda t: t.input.button is not None)
def stale_button(turn: Turn) -> None:
    """A button from an old message that no longer applies: show the menu again."""
    turn.ask(None, texts.MENU_PROMPT, texts.MAIN_MENU)
