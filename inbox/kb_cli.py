"""``otklik kb``: the knowledge base's own commands (knowledge_base.cli) and ``kb gaps``, which
reads the inbox. Imports of the database layer are inside the command, so that ``otklik kb
search`` stays instant."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from knowledge_base.cli import kb_app

__all__ = ["kb_app"]


@kb_app.command("gaps")
def kb_gaps(
    days: Annotated[int, typer.Option(min=1, max=3660, help="The period: the last N days.")] = 30,
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many clusters to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Group what the bot handed off or answered with low confidence into clusters: count,
    examples (personal data masked) and the nearest entry, for the people who write answers."""
    from core.config import get_settings
    from inbox.gaps import unanswered_questions
    from inbox.runtime import build_runtime
    from knowledge_base.gaps import find_gaps

    rt = build_runtime(get_settings())
    try:
        until = rt.clock.now()
        with rt.factory() as session:
            questions = unanswered_questions(session, until - timedelta(days=days), until)
        gaps = find_gaps([q.text for q in questions], rt.kb.get())[:top]
    finally:
        rt.dispose()
    if as_json:
        rows = [
            {
                "count": g.count, "examples": g.examples, "keywords": g.keywords,
                "nearest_entry": g.nearest_entry, "nearest_score": g.nearest_score,
            }
            for g in gaps
        ]  # fmt: skip
        typer.echo(json.dumps({"questions": len(questions), "clusters": rows}, ensure_ascii=False))
        return
    typer.echo(f"{len(questions)} questions in {days} days, {len(gaps)} clusters shown")
    for number, gap in enumerate(gaps, start=1):
        near = f"{gap.nearest_entry} ({gap.nearest_score:.2f})" if gap.nearest_entry else "—"
        typer.echo(f"{number}. {gap.count} × [{', '.join(gap.keywords)}]  nearest: {near}")
        for example in gap.examples[:3]:
            typer.echo(f"     «{example}»")
