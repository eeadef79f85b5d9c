"""NLU backend that asks a Rasa server (``rasa run --enable-api``) through ``POST /model/parse``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import httpx

from knowledge_base.entries import KBEntry, load_entries
from knowledge_base.nlu_types import Entity, NLUResult
from knowledge_base.rasa_export import SERVICE_INTENTS
from knowledge_base.store import active_dir, configured_kb_dir

DEFAULT_TIMEOUT = 5.0


class RasaUnavailableError(RuntimeError):
    """The Rasa server cannot be used: down, too slow, or answering something unexpected."""


class RasaNLU:
    """Understands messages with a Rasa model trained by ``scripts/rasa/train.sh``.

    Intents are KB entry ids; topic and life situation come from the local knowledge base.
    Rasa's ``nlu_fallback`` intent means "no KB entry" and gives ``intent=None`` (the
    confidence is then the best KB candidate's, for the caller's threshold).
    """

    name = "rasa"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        entries: Sequence[KBEntry] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._params = {"token": token} if token else {}
        self._entries = {entry.id: entry for entry in entries} if entries is not None else None
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def entries(self) -> dict[str, KBEntry]:
        if self._entries is None:
            directory = active_dir(configured_kb_dir())
            self._entries = {entry.id: entry for entry in load_entries(directory)}
        return self._entries

    def parse(self, text: str) -> NLUResult:
        return self.result_from_rasa(self._post("/model/parse", {"text": text}))

    def status(self) -> dict[str, Any]:
        """Rasa's ``GET /status``: which model is loaded."""
        return self._request("GET", "/status")

    def result_from_rasa(self, data: dict[str, Any]) -> NLUResult:
        """Map Rasa's parse answer (intent, intent_ranking, entities) to our NLUResult."""
        ranking = [
            (str(item["name"]), float(item["confidence"]))
            for item in data.get("intent_ranking") or []
            if item.get("name") and item["name"] not in SERVICE_INTENTS
        ]
        top = data.get("intent") or {}
        name = top.get("name")
        if name and name not in SERVICE_INTENTS:
            intent: str | None = str(name)
            confidence = float(top.get("confidence") or 0.0)
        else:
            intent = None
            confidence = ranking[0][1] if ranking else 0.0
        entry = self.entries.get(intent) if intent else None
        return NLUResult(
            intent=intent,
            confidence=confidence,
            topic=entry.topic if entry else None,
            life_situation=entry.life_situation if entry else None,
            entities=[
                Entity(
                    kind=str(item["entity"]),
                    value=str(item["value"]),
                    start=int(item["start"]),
                    end=int(item["end"]),
                )
                for item in data.get("entities") or []
            ],
            ranking=ranking,
            backend=self.name,
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, json=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, params=self._params, **kwargs)
        except httpx.TimeoutException as exc:
            raise RasaUnavailableError(
                f"Rasa server at {self.url} did not answer within {self.timeout:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise RasaUnavailableError(
                f"Rasa server at {self.url} is not reachable ({exc}). Start it with "
                "scripts/rasa/serve.sh, or unset RASA_URL to use the embedded NLU."
            ) from exc
        if response.status_code != 200:
            raise RasaUnavailableError(
                f"Rasa server at {self.url} answered {method} {path} with HTTP "
                f"{response.status_code}: {response.text[:300]}"
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise RasaUnavailableError(
                f"Rasa server at {self.url} answered {method} {path} with non-JSON text"
            ) from exc
        if not isinstance(data, dict):
            raise RasaUnavailableError(f"Rasa server at {self.url}: unexpected answer {data!r}")
        return data
