"""Handlers registered with filters, tried in order; the first whose filters all match runs.

The shape of aiogram's ``Router`` (small handler functions, filters, nested routers), kept
channel-agnostic: the bot is driven by Telegram and by the web chat alike, so handlers see a
``Turn`` (our input, our state), not a platform update.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.citizen.dialogue import Turn

Handler = Callable[["Turn"], None]
Filter = Callable[["Turn"], bool]


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self._routes: list[tuple[tuple[Filter, ...], Handler] | Router] = []

    def on(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Register the decorated handler for turns that pass every filter."""

        def register(handler: Handler) -> Handler:
            self._routes.append((filters, handler))
            return handler

        return register

    def include(self, router: Router) -> None:
        self._routes.append(router)

    def dispatch(self, turn: Turn) -> bool:
        """Run the first matching handler; False when none matched."""
        for route in self._routes:
            if isinstance(route, Router):
                if route.dispatch(turn):
                    return True
                continue
            filters, handler = route
            if all(check(turn) for check in filters):
                handler(turn)
                return True
        return False


def button(*ids: str) -> Filter:
    """A pressed button with one of these ids (an id ending in ``:`` matches as a prefix)."""

    def check(turn: Turn) -> bool:
        pressed = turn.input.button
        return pressed is not None and any(
            pressed.startswith(i) if i.endswith(":") else pressed == i for i in ids
        )

    return check


def step(*names: str) -> Filter:
    """The dialogue waits for this step's answer (the step is kept in the database)."""
    return lambda turn: turn.state.step in names


def typed(pattern: str) -> Filter:
    """Typed text (not a button) matching the regular expression, case-insensitive."""
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda turn: turn.input.button is None and bool(regex.search(turn.input.text))


def has_text(turn: Turn) -> bool:
    return turn.input.button is None and bool(turn.input.text.strip())


def has_attachment(*kinds: str) -> Filter:
    return lambda turn: any(a.get("kind") in kinds for a in turn.input.attachments)
