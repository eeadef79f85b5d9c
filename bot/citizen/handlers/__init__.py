"""The bot's handlers, one router per feature; ``root`` orders them (first match wins)."""

from __future__ import annotations

from bot.citizen.handlers import (
    application,
    complaint,
    link,
    mailings,
    menu,
    operator,
    payment,
    questions,
    status,
)
from bot.citizen.router import Router


def build_root() -> Router:
    """The order matters: «стоп» and «Отписаться» beat everything (in operator mode too);
    then calling an operator; in operator mode the bot keeps quiet; menu buttons leave any
    form; a form step takes typed text before the KB does."""
    root = Router("citizen")
    for router in (
        mailings.stop,
        operator.router,
        operator.quiet,
        menu.router,
        link.router,
        complaint.router,
        mailings.router,
        application.router,
        status.router,
        payment.router,
        questions.router,
    ):
        root.include(router)
    return root
