"""Gaps filled in the VK parser: keyboard button presses carry the button's id."""

from __future__ import annotations

from bot.normalize import normalize
from core.events import Channel, Place
from rules.profile import AgencyProfile
from tests.helpers.payloads import payload


def test_pressed_keyboard_button_id_reaches_the_event(profile: AgencyProfile) -> None:
    event = normalize(Channel.vk, payload("vk", "message_new_button.json"), profile)
    assert event.facts.place is Place.private
    assert event.facts.extra["button"] == "menu:status"
    assert event.text == "Статус заявления"


def test_typed_message_has_no_button(profile: AgencyProfile) -> None:
    event = normalize(Channel.vk, payload("vk", "message_new.json"), profile)
    assert event.facts.extra["button"] is None
