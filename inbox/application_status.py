"""An application's lifecycle as data: the statuses, the allowed moves, what each move needs.

    submitted ──▶ in_progress ──▶ done
        │            ▲  │  ▲        │
        │            │  ▼  │        │ reopened
        ├──────▶ info_needed        ▼
        │                        in_progress
        └──────▶ refused (why; when, if there is a date) ──▶ in_progress (the time has come)

The agency moves an application on; the citizen is told each time. ``MOVES`` is the only
place that says which move is allowed, and ``NEEDS`` what it must carry: everything else
(the UI's choices, the API's 409, the CLI) reads them. A later "shared complaint" (issue #10,
part 4) has the same life and can use the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ApplicationStatus(StrEnum):
    submitted = "submitted"
    in_progress = "in_progress"
    info_needed = "info_needed"
    done = "done"
    refused = "refused"


S = ApplicationStatus

#: From each status, where it may go. ``done`` and ``refused`` are final for the citizen, but
#: may be taken up again: the problem came back, or the date given with a refusal has come.
MOVES: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    S.submitted: frozenset({S.in_progress, S.info_needed, S.done, S.refused}),
    S.in_progress: frozenset({S.info_needed, S.done, S.refused}),
    S.info_needed: frozenset({S.in_progress, S.done, S.refused}),
    S.done: frozenset({S.in_progress}),
    S.refused: frozenset({S.in_progress}),
}

#: Statuses in which the agency still owes the citizen an answer.
OPEN = frozenset({S.submitted, S.in_progress, S.info_needed})
#: Open and waiting for the agency (``info_needed`` waits for the citizen): what can be overdue.
AGENCY_TURN = frozenset({S.submitted, S.in_progress})


@dataclass(frozen=True)
class Needs:
    """What a change to a status must or may carry."""

    #: A comment the citizen reads: ``info_needed`` says what is needed.
    comment: bool = False
    #: Why (``refused``): the standard's segment «Не объяснили отказ».
    reason: bool = False
    #: An expected date may be given: when the work will be done, or when it becomes possible.
    expected_date: bool = False


NEEDS: dict[ApplicationStatus, Needs] = {
    S.submitted: Needs(),
    S.in_progress: Needs(expected_date=True),
    S.info_needed: Needs(comment=True),
    S.done: Needs(),
    S.refused: Needs(reason=True, expected_date=True),
}

#: Names for operators (the UI, the CLI's output).
LABELS: dict[ApplicationStatus, str] = {
    S.submitted: "Подано",
    S.in_progress: "В работе",
    S.info_needed: "Нужны сведения",
    S.done: "Выполнено",
    S.refused: "Отказано",
}


def parse(value: str) -> ApplicationStatus | None:
    try:
        return ApplicationStatus(value)
    except ValueError:
        return None


def allowed_moves(current: str) -> list[ApplicationStatus]:
    """Where an application in ``current`` may go, in lifecycle order."""
    status = parse(current)
    if status is None:
        return []
    return [s for s in ApplicationStatus if s in MOVES[status]]
