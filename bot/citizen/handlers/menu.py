"""Greeting and the main menu."""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.router import Router, button, typed

router = Router("menu")


@router.on(typed(r"^\s*(/start\b.*|/menu|меню|главное меню|начать|привет|здравствуйте)\W*$"))
def greet(turn: Turn) -> None:
    turn.state.form = {}
    turn.ask(None, texts.GREETING, texts.MAIN_MENU)


@router.on(button(texts.MENU))
def main_menu(turn: Turn) -> None:
    turn.state.form = {}
    turn.ask(None, texts.MENU_PROMPT, texts.MAIN_MENU)


@router.on(button(texts.ASK))
def ask_question(turn: Turn) -> None:
    turn.state.form = {}
    turn.ask(None, texts.ASK_PROMPT, texts.BACK)
