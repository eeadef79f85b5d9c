"""+1 to a shared complaint, offered instead of a new application or appeal.

Two moments: after the address step of an application, when an open shared complaint has
the chosen kind and the same place (``inbox.complaints.find_match``); and on a free-text
message outside any form, when it has a word of a complaint's topic (``rules/complaints.yaml``)
and names its place with the house number (``inbox.complaints.find_match_in_text``).
«Поддержать (+1)» makes the citizen a supporter (told of every status change in this
channel); «Подать отдельно» goes on: with the form, or with the message as it was (the
knowledge base, or an operator). The offer's complaint id is kept in the dialogue's state:
a pressed id that is not the one offered (an old keyboard, a forged callback) is not
joined, the offer is shown again.
"""

from __future__ import annotations

from bot.citizen import texts
from bot.citizen.dialogue import Turn
from bot.citizen.handlers import questions
from bot.citizen.router import Router, button, step
from inbox import complaints
from inbox.complaint_texts import (
    BUTTON_JOIN,
    BUTTON_SEPARATE,
    JOIN_ALREADY,
    JOIN_CLOSED,
    JOIN_DONE,
    OFFER,
    TRACK,
    status_label,
    tracker_url,
)
from inbox.models import SharedComplaint

router = Router("complaint")

JOIN = "cjoin:"
SEPARATE = "cjoin-no"
STEP = "apply.join"
#: The offer made on a free-text message (no form in progress).
STEP_TEXT = "complaint.offer"


def offer(turn: Turn) -> bool:
    """Offer the matching open complaint, if there is one; False: go on with the form."""
    form = turn.state.form
    found = complaints.find_match(turn.session, form.get("service", ""), form.get("address", ""))
    if found is None or found.id is None:
        return False
    form["complaint"] = str(found.id)
    _ask(turn, found)
    return True


def _matches_text(turn: Turn) -> bool:
    """Typed text outside any step that names an open complaint's place and topic."""
    if turn.state.step is not None or turn.input.button is not None:
        return False
    text = turn.input.text.strip()
    topics = turn.context.complaint_rules.topics_of(text) if text else []
    found = complaints.find_match_in_text(turn.session, text, topics) if topics else None
    if found is None or found.id is None:
        return False
    turn.state.form = {"complaint": str(found.id), "text": text[:2000]}
    return True


@router.on(_matches_text)
def offer_on_text(turn: Turn) -> None:
    """A message about a problem the neighbours already reported: +1 instead?"""
    complaint = _offered(turn)
    assert complaint is not None
    _ask(turn, complaint, STEP_TEXT)


def _ask(turn: Turn, complaint: SharedComplaint, at: str = STEP) -> None:
    assert complaint.id is not None
    text = OFFER.format(
        title=complaint.title, place=complaint.place,
        count=complaints.supporters_count(turn.session, complaint.id),
        status=status_label(complaint.status),
    )  # fmt: skip
    buttons: list[list[texts.Button]] = [
        [{"id": f"{JOIN}{complaint.id}", "text": BUTTON_JOIN}],
        [{"id": SEPARATE, "text": BUTTON_SEPARATE}],
        *texts.BACK,
    ]
    turn.ask(at, text, buttons)


def _offered(turn: Turn) -> SharedComplaint | None:
    raw = turn.state.form.get("complaint", "")
    return turn.session.get(SharedComplaint, int(raw)) if raw.isdigit() else None


def _go_on(turn: Turn, note: str | None = None) -> None:
    """Back to the form (the description step), or, after an offer on free text, on with
    that text as the message it was: the knowledge base or an operator."""
    turn.state.form.pop("complaint", None)
    if turn.state.step == STEP_TEXT:
        text = turn.state.form.get("text", "")
        turn.state.form = {}
        turn.state.step = None
        if note:
            turn.say(note)
        turn.input = turn.input.model_copy(update={"text": text, "button": None})
        questions.question(turn)
        return
    text = f"{note}\n\n{texts.APPLY_DESCRIPTION}" if note else texts.APPLY_DESCRIPTION
    turn.ask("apply.description", text, texts.BACK)


@router.on(step(STEP, STEP_TEXT), button(SEPARATE))
def separate(turn: Turn) -> None:
    _go_on(turn)


@router.on(step(STEP, STEP_TEXT), button(JOIN))
def join(turn: Turn) -> None:
    complaint = _offered(turn)
    assert turn.input.button is not None
    if complaint is None or complaint.id is None:
        _go_on(turn)
        return
    if turn.input.button != f"{JOIN}{complaint.id}":
        _ask(turn, complaint, turn.state.step or STEP)
        return
    try:
        joined = complaints.join(
            turn.session, complaint, turn.conversation, "bot", turn.now, notify=False
        )
    except complaints.ComplaintError:
        _go_on(turn, JOIN_CLOSED)
        return
    count = complaints.supporters_count(turn.session, complaint.id)
    head = (JOIN_DONE if joined else JOIN_ALREADY).format(title=complaint.title, count=count)
    url = tracker_url(turn.context.public_url, complaint.slug)
    turn.state.form = {}
    turn.ask(None, f"{head}\n{TRACK.format(url=url)}", texts.AFTER_ANSWER)


@router.on(step(STEP, STEP_TEXT))
def unexpected(turn: Turn) -> None:
    """Typed text or another button while the offer waits: show it again."""
    complaint = _offered(turn)
    if complaint is None:
        _go_on(turn)
        return
    _ask(turn, complaint, turn.state.step or STEP)
