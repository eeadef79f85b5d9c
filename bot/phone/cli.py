"""``otklik phone``: the webhook's JSON Schema, and signing a test request."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bot.phone.schema import PhoneEvent
from bot.phone.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from core.config import get_settings

phone_app = typer.Typer(help="Phone-robot webhook.", no_args_is_help=True)


@phone_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the events the robot posts to /webhooks/phone."""
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **PhoneEvent.model_json_schema(),
    }
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


@phone_app.command("sign")
def sign_file(
    body: Annotated[Path, typer.Argument(help="File with the exact JSON body to send")],
) -> None:
    """Print the signature headers for a body, with OTKLIK_PHONE_SECRET (for testing a robot)."""
    secret = get_settings().phone_secret
    if not secret:
        typer.echo("otklik: set OTKLIK_PHONE_SECRET first", err=True)
        raise typer.Exit(2)
    timestamp = int(time.time())
    typer.echo(f"{TIMESTAMP_HEADER}: {timestamp}")
    typer.echo(f"{SIGNATURE_HEADER}: {sign(secret, timestamp, body.read_bytes())}")
