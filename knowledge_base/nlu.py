"""The embedded NLU backend: no server, no model download.

The intent of a message is the knowledge-base entry it asks about, found by the same
retrieval the bot uses (``knowledge_base.search``), so it is «trained» from the entries and
their phrasings the moment they load. Over the app's ``KnowledgeBaseProvider`` it follows the
edits made in the admin UI from the next message on. Entities come from
``knowledge_base.entities``.
"""

from __future__ import annotations

from pathlib import Path

from knowledge_base.entities import extract_entities
from knowledge_base.nlu_types import NLUResult
from knowledge_base.search import KnowledgeBase
from knowledge_base.store import KnowledgeBaseProvider, as_provider, configured_kb_dir


class EmbeddedNLU:
    """``NLUBackend`` over the in-process knowledge base (a provider or a fixed one).

    ``threshold`` None: the knowledge base's own hand-off threshold (``search.yaml``).
    """

    name = "embedded"

    def __init__(
        self, kb: KnowledgeBase | KnowledgeBaseProvider, *, threshold: float | None = None
    ) -> None:
        self._kb = as_provider(kb)
        self._threshold = threshold

    @classmethod
    def load(cls, *, threshold: float | None = None, kb_dir: Path | None = None) -> EmbeddedNLU:
        """Over the entries of ``kb_dir``, by default the settings' (``OTKLIK_KB_DIR``): the
        same directory the server reads. Loaded now, so that a broken file shows at once."""
        provider = KnowledgeBaseProvider(kb_dir or configured_kb_dir())
        provider.get()
        return cls(provider, threshold=threshold)

    @property
    def kb(self) -> KnowledgeBase:
        """The current knowledge base."""
        return self._kb.get()

    @property
    def threshold(self) -> float:
        return self.kb.config.handoff_threshold if self._threshold is None else self._threshold

    def parse(self, text: str) -> NLUResult:
        entities = extract_entities(text)
        answer = self.kb.answer(text, threshold=self._threshold)
        ranking = [(hit.entry_id, hit.confidence) for hit in answer.hits]
        best = answer.hit
        if best is None:
            return NLUResult(
                intent=None,
                confidence=answer.hits[0].confidence if answer.hits else 0.0,
                entities=entities,
                ranking=ranking,
                backend=self.name,
            )
        return NLUResult(
            intent=best.entry_id,
            confidence=best.confidence,
            topic=best.entry.topic,
            life_situation=best.entry.life_situation,
            entities=entities,
            ranking=ranking,
            backend=self.name,
        )
