"""The interactive API documentation (``/docs``, ``/redoc``) and the schema ``/openapi.json``.

Off unless ``OTKLIK_API_DOCS=on``: on a public server they hand a map of every endpoint and
parameter to whoever asks. Tests and tools that need the schema call ``app.openapi()``.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings


def api_docs_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``FastAPI(...)``."""
    if settings.api_docs:
        return {}
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}
