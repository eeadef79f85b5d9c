"""A webhook's JSON body as a dict, or a ``PayloadError`` that says what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

from core.events import PayloadError


def load_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("payload is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:  # a number of more than 4300 digits
        raise PayloadError(f"payload is not usable JSON: {str(exc)[:80]}") from None
    except RecursionError:  # the web app refuses deep nesting before; the CLI reads files
        raise PayloadError("payload is nested too deeply") from None
    if not isinstance(data, dict):
        raise PayloadError("payload must be a JSON object")
    return data
