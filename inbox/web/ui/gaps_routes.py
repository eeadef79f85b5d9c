"""«Пробелы базы знаний» (supervisors): what the bot could not answer, grouped into clusters,
with a spreadsheet row to start a new entry from a cluster (docs/knowledge-base.md)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from inbox.gaps import unanswered_questions
from inbox.runtime import Runtime
from inbox.web.deps import RuntimeDep
from inbox.web.ui.security import SupervisorDep
from inbox.web.ui.templating import render
from knowledge_base.entries import KBEntry
from knowledge_base.gaps import Gap, find_gaps
from knowledge_base.spreadsheet import COLUMNS, entry_row, write_csv_rows

router = APIRouter()

PERIODS = {7: "7 дней", 30: "30 дней", 90: "90 дней"}
DaysQuery = Annotated[int, Query(ge=1, le=366)]
SHOWN = 30


def _gaps(rt: Runtime, days: int) -> tuple[int, list[Gap]]:
    until = rt.clock.now()
    with rt.factory() as session:
        questions = unanswered_questions(session, until - timedelta(days=days), until)
    return len(questions), find_gaps([q.text for q in questions], rt.kb.get())[:SHOWN]


@router.get("/gaps")
async def gaps_page(
    request: Request, rt: RuntimeDep, me: SupervisorDep, days: DaysQuery = 30
) -> Response:
    total, gaps = await asyncio.to_thread(_gaps, rt, days)
    return render(
        request, "gaps.html", me, section="gaps", gaps=gaps, total=total, days=days,
        periods=PERIODS,
    )  # fmt: skip


@router.get("/gaps/{number}.csv")
async def gap_row(
    rt: RuntimeDep,
    me: SupervisorDep,
    number: int,
    days: DaysQuery = 30,
) -> Response:
    """A one-row spreadsheet (the KB's columns) to start a new entry from cluster ``number``:
    its most typical question, the others as phrasings, the nearest entry's topic and life
    situation. The answers are left for the author; «Загрузить» on «База знаний» imports it."""
    if not 1 <= number <= SHOWN:
        raise HTTPException(404)
    _total, gaps = await asyncio.to_thread(_gaps, rt, days)
    if number > len(gaps):
        raise HTTPException(404)
    gap = gaps[number - 1]
    near = rt.kb.get().by_id.get(gap.nearest_entry or "")
    slug = re.sub(r"[^a-z0-9]+", "-", _latin("-".join(gap.keywords[:2]))).strip("-") or "gap"
    draft = KBEntry.model_construct(
        id=f"new-{slug}", topic=near.topic if near else "", question=gap.examples[0],
        life_situation=near.life_situation if near else "", phrasings=gap.examples[1:],
        synonyms=[], short_answer="", full_answer="", department=near.department if near else "",
        cannot_because=None, available_when=None,
    )  # fmt: skip
    data = write_csv_rows([[h for _, h in COLUMNS], entry_row(draft)])
    return Response(
        data, media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gap-{number}.csv"',
                 "Cache-Control": "no-store"},
    )  # fmt: skip


_LATIN = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                  ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o",
                   "p", "r", "s", "t", "u", "f", "h", "ts", "ch", "sh", "sch", "", "y", "", "e",
                   "yu", "ya"], strict=True))  # fmt: skip


def _latin(text: str) -> str:
    return "".join(_LATIN.get(c, c) for c in text.lower())
