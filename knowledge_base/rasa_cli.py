"""``otklik rasa ...``: export the knowledge base as a Rasa project, ask a running Rasa server."""

from __future__ import annotations

from pathlib import Path

import typer

from knowledge_base.entries import KBLoadError, load_entries
from knowledge_base.rasa_export import (
    DEFAULT_EPOCHS,
    RasaExportError,
    build_project,
    write_project,
)
from knowledge_base.search import SYNONYMS_FILE, load_synonym_groups
from knowledge_base.store import active_dir, configured_kb_dir

rasa_app = typer.Typer(help="Rasa NLU: export the knowledge base, parse with a Rasa server.")


@rasa_app.command("export")
def export(
    directory: Path = typer.Argument(..., help="Where to write the Rasa project."),
    entries_dir: Path | None = typer.Option(
        None, "--entries", help="Directory of KB entries (default: the ones the server reads)."
    ),
    synonyms_file: Path = typer.Option(
        SYNONYMS_FILE, "--synonyms", help="Shared synonym groups (YAML list of lists)."
    ),
    epochs: int = typer.Option(DEFAULT_EPOCHS, min=1, help="DIETClassifier training epochs."),
) -> None:
    """Write a Rasa 3.6 project (config, domain, NLU data, rules) generated from the KB."""
    try:
        entries = load_entries(entries_dir or active_dir(configured_kb_dir()))
        shared = load_synonym_groups(synonyms_file)
        project = build_project(entries, shared_synonyms=shared, epochs=epochs)
    except (KBLoadError, RasaExportError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    write_project(project, directory)
    typer.echo(f"{len(entries)} intents written to {directory} (export {project.digest[:12]})")


@rasa_app.command("parse")
def parse(
    text: str = typer.Argument(..., help="A citizen's message."),
    url: str = typer.Option(..., envvar="RASA_URL", help="Rasa server, e.g. http://127.0.0.1:5005"),
) -> None:
    """Show how the Rasa server understands a message."""
    from knowledge_base.rasa_nlu import RasaNLU, RasaUnavailableError

    try:
        with RasaNLU(url) as nlu:
            result = nlu.parse(text)
    except RasaUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(result.model_dump_json(indent=2))
