"""Choose the NLU backend: a Rasa server when ``RASA_URL`` is set, else the embedded one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from knowledge_base.nlu_types import NLUBackend

if TYPE_CHECKING:
    from knowledge_base.store import KnowledgeBaseProvider

RASA_URL_VAR = "RASA_URL"


def get_nlu_backend(
    environ: Mapping[str, str] | None = None, *, kb: KnowledgeBaseProvider | None = None
) -> NLUBackend:
    """The backend the bot should use.

    The embedded NLU is imported only when chosen, so that a deployment with Rasa does not
    build the embedded index at all. In the server pass the runtime's provider (``Runtime.kb``)
    as ``kb``: the NLU then shares the index of the bots and follows admin edits; without it,
    the entries of the settings' ``kb_dir`` are loaded.
    """
    env = os.environ if environ is None else environ
    url = env.get(RASA_URL_VAR, "").strip()
    if url:
        from knowledge_base.rasa_nlu import RasaNLU

        return RasaNLU(url)
    from knowledge_base.nlu import EmbeddedNLU

    return EmbeddedNLU(kb) if kb is not None else EmbeddedNLU.load()
