"""Complaint helpers shared by the complaints suites."""

from __future__ import annotations

from inbox.models import Conversation
from inbox.runtime import Runtime


def numbers(runtime: Runtime, ids: list[int]) -> list[str]:
    with runtime.factory() as session:
        found = [session.get(Conversation, i) for i in ids]
        return [c.number for c in found if c is not None and c.number is not None]
