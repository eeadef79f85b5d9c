"""«Связать аккаунты»: a one-time code asked for in one chat channel and sent in another makes
the two citizen records one (``inbox.identity_links``)."""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.router import Router, button, typed
from inbox import identity_links

router = Router("link")

ASK = r"^\W*(/link|связать\s+аккаунты?|связать\s+мессенджеры)\W*$"


@router.on(button(texts.LINK))
@router.on(typed(ASK))
def ask_code(turn: Turn) -> None:
    code = identity_links.issue(
        turn.session, turn.conversation.citizen_id, turn.conversation.channel, turn.now
    )
    minutes = int(identity_links.LIFETIME.total_seconds() // 60)
    turn.ask(None, texts.LINK_CODE.format(code=code, minutes=minutes), texts.BACK)


def _is_code(turn: Turn) -> bool:
    return turn.input.button is None and identity_links.parse(turn.input.text) is not None


@router.on(_is_code)
def redeem(turn: Turn) -> None:
    code = identity_links.parse(turn.input.text)
    assert code is not None
    outcome = identity_links.redeem(turn.session, turn.conversation, code, turn.now)
    text = {
        None: texts.LINK_DONE,
        identity_links.Refusal.wrong: texts.LINK_WRONG,
        identity_links.Refusal.self: texts.LINK_SELF,
        identity_links.Refusal.too_many: texts.LINK_TOO_MANY,
    }[outcome.refused]
    turn.ask(None, text, texts.BACK)
