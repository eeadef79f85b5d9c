"""``otklik kb ...`` (search, check) and ``otklik text check`` (readability)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from knowledge_base.entries import ENTRIES_DIR
from knowledge_base.heldout import HELDOUT_FILE
from knowledge_base.readability import ReadabilityReport, check_text, load_bar
from knowledge_base.search import Answer
from knowledge_base.store import active_dir, configured_kb_dir
from knowledge_base.templates import TEMPLATES_FILE, default_templates, preview
from knowledge_base.validate import check_knowledge_base

kb_app = typer.Typer(help="Knowledge base: search the FAQ, validate entries.", no_args_is_help=True)
text_app = typer.Typer(help="Readability of Russian answers.", no_args_is_help=True)


@kb_app.command("search")
def kb_search(
    text: Annotated[str, typer.Argument(help="What the citizen wrote.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many entries to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the entries that answer TEXT, with scores and the hand-off decision.

    Searches the entries the server reads (OTKLIK_KB_DIR, else DATA_DIR/knowledge_base once
    an entry was edited there, else the shipped ones). The index is read from the cache
    (OTKLIK_CACHE_DIR, else ~/.cache/otklik) and rebuilt when an entry file changed.
    """
    from knowledge_base.index_cache import load_cached

    kb = load_cached(active_dir(configured_kb_dir()))
    answer = kb.answer(text)
    hits = kb.search(text, k=k)
    if as_json:
        typer.echo(json.dumps(_answer_json(text, answer, hits), ensure_ascii=False, indent=2))
        return
    for rank, hit in enumerate(hits, start=1):
        typer.echo(
            f"{rank}. {hit.entry_id}  score={hit.score:.3f}  confidence={hit.confidence:.2f}"
            f"  «{hit.entry.question}»"
        )
    if answer.off_topic:
        typer.echo(f"→ hand off to an operator (off_topic: not our topic «{answer.off_topic}»)")
    elif answer.handoff:
        typer.echo(
            f"→ hand off to an operator ({answer.reason}; threshold "
            f"{kb.config.handoff_threshold:g})"
        )
    elif answer.hit:
        typer.echo(f"→ answer with {answer.hit.entry_id}: {answer.hit.entry.short_answer}")


def _answer_json(text: str, answer: Answer, hits: list[Any]) -> dict[str, Any]:
    return {
        "query": text,
        "handoff": answer.handoff,
        "reason": answer.reason,
        "off_topic": answer.off_topic,
        "answer": answer.hit.entry_id if answer.hit else None,
        "hits": [
            {
                "entry_id": hit.entry_id,
                "score": hit.score,
                "confidence": hit.confidence,
                "bm25": hit.bm25,
                "ngram_similarity": hit.ngram_similarity,
                "coverage": hit.coverage,
                "matched": hit.matched,
                "question": hit.entry.question,
                "short_answer": hit.entry.short_answer,
                "topic": hit.entry.topic,
                "life_situation": hit.entry.life_situation,
                "department": hit.entry.department,
            }
            for hit in hits
        ],
    }


@kb_app.command("check")
def kb_check(
    entries_dir: Annotated[
        Path | None,
        typer.Option(
            "--entries", help="Directory of entry YAML files (default: the ones the server reads)."
        ),
    ] = None,
    templates_file: Annotated[
        Path, typer.Option("--templates", help="Template replies YAML.")
    ] = TEMPLATES_FILE,
) -> None:
    """Validate every entry, template and setting; exit 1 listing each problem."""
    if entries_dir is None:
        entries_dir = active_dir(configured_kb_dir())
    # Held-out phrasings name the built-in entries; another directory has its own ids.
    heldout = HELDOUT_FILE if entries_dir == ENTRIES_DIR else None
    result = check_knowledge_base(entries_dir, templates_file=templates_file, heldout_file=heldout)
    for problem in result.problems:
        typer.echo(str(problem), err=True)
    if not result.ok:
        typer.echo(f"{len(result.problems)} problem(s) found.", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {result.entries} entries, {result.templates} templates ({entries_dir}).")


@kb_app.command("template")
def kb_template(
    template_id: Annotated[
        str | None, typer.Argument(help="Template id; without it, list the templates.")
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A variable as name=value (repeat).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a template reply filled with --var values, as the operator sees it before sending."""
    templates = default_templates()
    if template_id is None:
        for template in templates.values():
            typer.echo(f"{template.id}  ({template.channel})  {template.title}")
        return
    if template_id not in templates:
        typer.echo(f"unknown template {template_id!r}; known: {', '.join(templates)}", err=True)
        raise typer.Exit(2)
    values: dict[str, Any] = {}
    for item in var or []:
        name, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"--var {item!r}: write it as name=value", err=True)
            raise typer.Exit(2)
        values[name.strip()] = value
    shown = preview(template_id, values)
    if as_json:
        typer.echo(shown.model_dump_json(indent=2))
    else:
        typer.echo(shown.text)
        if shown.missing:
            typer.echo(f"! не заполнено: {', '.join(shown.missing)}", err=True)
        _print_report(shown.text, shown.readability)
    if not shown.ready:
        raise typer.Exit(1)


@text_app.command("check")
def text_check(
    path: Annotated[str, typer.Argument(help="A text file, or - for standard input.")] = "-",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    bar_file: Annotated[
        Path | None, typer.Option("--bar", help="Readability bar YAML (default: built-in).")
    ] = None,
) -> None:
    """Check how easy a Russian text is to read; exit 1 when it misses the bar."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = check_text(text, load_bar(bar_file) if bar_file else None)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(text, report)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(text: str, report: ReadabilityReport) -> None:
    verdict = "OK" if report.ok else "НЕ ПРОХОДИТ"
    typer.echo(f"{verdict}: {report.grade_text} (уровень {report.grade_level:.1f})")
    typer.echo(
        f"Флеш (Оборнева) {report.flesch_reading_ease:.1f}; "
        f"Флеш-Кинкейд {report.flesch_kincaid_grade:.1f}; SMOG {report.smog:.1f}; "
        f"Коулман-Лиау {report.coleman_liau:.1f}; канцелярит "
        f"{report.kantselyarit_per_100_words:.1f} на 100 слов"
    )
    for failure in report.failures:
        typer.echo(f"  ! {failure}")
    for issue in report.issues:
        line = text.count("\n", 0, issue.start) + 1
        column = issue.start - (text.rfind("\n", 0, issue.start) + 1) + 1
        hint = f" → {issue.suggestion}" if issue.suggestion else ""
        typer.echo(f"  {line}:{column} [{issue.kind}] {issue.message}{hint}")
