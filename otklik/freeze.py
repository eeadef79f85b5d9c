"""What lives as long as a server process, kept out of the cyclic garbage collector's walks.

Both server processes (the web app, ``otklik worker``) hold about a million long-lived
objects once started: aiogram's and the other imports' classes, the runtime, the knowledge
base's index. Each full collection of the cyclic collector walks them all again, and on the
ingest path that cost up to 0.3 ms per event in the worker and about 0.1 ms per webhook
(normalizing a payload: ~145 µs of CPU with a growing heap, ~50 µs frozen; docs/performance.md
section 1). ``gc.freeze`` moves everything alive into a permanent generation that collections
skip; objects made later are collected as usual (a KB rebuilt later too).
"""

from __future__ import annotations

import gc
import logging

from inbox.runtime import Runtime

log = logging.getLogger(__name__)


def freeze_startup(runtime: Runtime) -> None:
    """Load the knowledge base's index (so that the index, built once, is frozen too), then
    ``gc.collect(); gc.freeze()``. A KB that does not load is logged (the bot's turn reports
    it) and the freeze still happens."""
    try:
        runtime.kb.get()
    except Exception:
        log.exception("knowledge base not loaded at start-up")
    gc.collect()
    gc.freeze()
