"""The supervisor dashboard, its CSV export and the public page of aggregated ratings."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from inbox import journal_failures, metrics
from inbox.csv_safe import safe_row
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.charts import bar_chart
from inbox.web.ui.security import SupervisorDep
from inbox.web.ui.templating import render

router = APIRouter()
public_router = APIRouter()

PERIODS = {1: "сутки", 7: "7 дней", 30: "30 дней"}
DaysQuery = Annotated[int, Query(ge=1, le=366)]


def _period(rt: Runtime, days: int) -> metrics.Period:
    return metrics.Period.last_days(rt.clock.now(), days)


@router.get("/dashboard")
def dashboard(request: Request, rt: RuntimeDep, me: SupervisorDep, days: DaysQuery = 7) -> Response:
    period = _period(rt, days)
    now = rt.clock.now()
    with rt.factory() as session:
        shares = metrics.deadline_shares(session, period, now)
        breaches = metrics.breaches(session, period, now)
        times = metrics.response_times(session, period)
        load = metrics.operator_load(session)
        ratings = metrics.ratings(session, period)
        low_kb = metrics.low_rated_kb_answers(session, period)
        volume = metrics.volume_by_hour(session, period, rt.rules.calendar.timezone)
        failed = journal_failures.count_failed(session)  # a partial index: cheap
    return render(
        request,
        "dashboard.html",
        me,
        days=days,
        periods=PERIODS,
        shares=shares,
        total=metrics.total_share(shares),
        breaches=breaches,
        times=times,
        load=load,
        ratings=ratings,
        low_kb=low_kb,
        failed=failed,
        response_chart=bar_chart(times.histogram, title="Время до первого ответа"),
        volume_chart=bar_chart(
            [(f"{h:02d}", n) for h, n in enumerate(volume)],
            title="Сообщения по часам суток",
            label_every=3,
        ),
    )


@router.get("/dashboard.csv")
def dashboard_csv(rt: RuntimeDep, me: SupervisorDep, days: DaysQuery = 7) -> Response:
    """Conversations of the period with their deadline outcome (UTF-8 with BOM for Excel)."""
    with rt.factory() as session:
        rows = metrics.conversation_rows(session, _period(rt, days))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["number", "channel", "kind", "status", "opened_at", "due_at", "first_response_at",
         "response_minutes", "sla", "assignee"]
    )  # fmt: skip
    for r in rows:
        writer.writerow(safe_row(
            [r.number, r.channel, r.kind, r.status, r.opened_at.isoformat(),
             r.due_at.isoformat() if r.due_at else "",
             r.first_response_at.isoformat() if r.first_response_at else "",
             "" if r.response_minutes is None else r.response_minutes, r.sla, r.assignee or ""]
        ))  # fmt: skip
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="otklik-{days}d.csv"'},
    )


@public_router.get("/public/ratings")
def public_ratings(request: Request, rt: RuntimeDep) -> Response:
    """Aggregated citizen ratings, published as the standard asks (no login, no personal data)."""
    with rt.factory() as session:
        last_30 = metrics.ratings(session, _period(rt, 30))
        overall = metrics.ratings(session)
        shares = metrics.total_share(
            metrics.deadline_shares(session, _period(rt, 30), rt.clock.now())
        )
    chart = bar_chart(
        [(f"{score} ★", n) for score, n in sorted(overall.distribution.items())],
        title="Распределение оценок",
        width=420,
        height=200,
    )
    return render(
        request,
        "public_ratings.html",
        last_30=last_30,
        overall=overall,
        on_time=shares,
        chart=chart,
        agency=rt.profile.names[0],
    )
