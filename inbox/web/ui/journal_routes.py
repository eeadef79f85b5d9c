"""Administration: inbound events set aside after failing processing (inbox/journal_failures.py).

The page lists them with their channel, when they came, the error and a masked excerpt of the
citizen's text; «Повторить» gives one another try (the next processing round takes it, within a
minute, and the citizen bot answers then), «Скрыть» takes it off the list. Both are audited.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from inbox import journal_failures
from inbox.models import Operator
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.security import AdminDep, verify_csrf
from inbox.web.ui.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)])

PAGE = "/ui/admin/journal"
#: Rows shown on the page (newest first); the count above the table is of all of them.
SHOWN = 200


@router.get("/admin/journal")
def journal_page(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    with rt.factory() as session:
        total = journal_failures.count_failed(session)
        rows = journal_failures.list_failed(session, limit=SHOWN)
    return render(
        request, "admin_journal.html", me, section="journal", rows=rows, total=total,
        max_attempts=rt.inbox.retry_policy.max_attempts,
    )  # fmt: skip


def _retry(rt: Runtime, me: Operator, ids: Sequence[int] | None) -> list[int]:
    with rt.factory() as session:
        done = journal_failures.retry(
            session, ids, rt.clock.now(), rt.inbox.retry_policy, actor=me.login,
            operator_id=me.id,
        )  # fmt: skip
        session.commit()
    return done


@router.post("/admin/journal/retry")
def journal_retry_all(request: Request, rt: RuntimeDep, me: AdminDep) -> Response:
    done = _retry(rt, me, None)
    flash(request, f"Событий отправлено на повторную обработку: {len(done)}. {_WHEN}")
    return RedirectResponse(PAGE, status_code=303)


@router.post("/admin/journal/{record_id}/retry")
def journal_retry(request: Request, rt: RuntimeDep, me: AdminDep, record_id: int) -> Response:
    if _retry(rt, me, [record_id]):
        flash(request, f"Событие {record_id} отправлено на повторную обработку. {_WHEN}")
    else:
        flash(request, f"Событие {record_id} уже обработано или не найдено.", "error")
    return RedirectResponse(PAGE, status_code=303)


@router.post("/admin/journal/{record_id}/dismiss")
def journal_dismiss(request: Request, rt: RuntimeDep, me: AdminDep, record_id: int) -> Response:
    with rt.factory() as session:
        done = journal_failures.dismiss(
            session, [record_id], rt.clock.now(), actor=me.login, operator_id=me.id
        )
        session.commit()
    if done:
        flash(request, f"Событие {record_id} скрыто из списка. Оно осталось в журнале.")
    else:
        flash(request, f"Событие {record_id} уже обработано, скрыто или не найдено.", "error")
    return RedirectResponse(PAGE, status_code=303)


_WHEN = "Его обработают в течение минуты. Если снова будет ошибка, событие вернётся в список."
