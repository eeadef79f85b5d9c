"""``otklik triage``: classify one native payload without touching the database."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.normalize import normalize
from core.config import get_settings
from core.events import Channel, InboundEvent, PayloadError
from rules.engine import Classification, ResponseRules
from rules.errors import RulesFileError
from rules.profile import load_profile

#: Bigger payloads are refused rather than read into memory.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024


def triage_report(
    event: InboundEvent, result: Classification, rules: ResponseRules
) -> dict[str, Any]:
    due = rules.due_at(event.published_at, result)
    return {
        "channel": event.channel.value,
        "kind": result.kind.value,
        "requires_response": result.requires_response,
        "deadline_hours": result.deadline_hours,
        "due_at": due.isoformat() if due else None,
        "rule": result.rule_id,
        "reason": result.reason,
        "text": event.text,
        "author": event.author.model_dump(exclude_none=True),
        "external_id": event.external_id,
        "thread_key": event.thread_key,
        "published_at": event.published_at.isoformat(),
        "place": event.facts.place.value,
        "is_public": event.facts.is_public,
        "mentions": result.mentions,
        "attachments": [a.model_dump(exclude_none=True) for a in event.attachments],
        "source_url": event.source_url,
    }


def _read(path: str) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
    else:
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(MAX_PAYLOAD_BYTES + 1)
        except OSError as exc:
            raise PayloadError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    return data


def triage(
    channel: Annotated[Channel, typer.Option(help="The channel whose native format PATH holds")],
    path: Annotated[str, typer.Argument(help="Payload file, or - for standard input")] = "-",
    profile: Annotated[
        Path | None, typer.Option(help="Agency profile YAML (default: OTKLIK_PROFILE)")
    ] = None,
) -> None:
    """Classify one native payload: does it need a response, and by when? Writes nothing."""
    settings = get_settings()
    try:
        agency = load_profile(profile or settings.profile)
        rules = ResponseRules.load(settings.rules_dir)
        event = normalize(channel, _read(path), agency)
    except (PayloadError, RulesFileError) as exc:
        typer.echo(f"otklik triage: {exc}", err=True)
        raise typer.Exit(2) from None
    result = rules.classify(event, agency)
    typer.echo(json.dumps(triage_report(event, result, rules), ensure_ascii=False))
