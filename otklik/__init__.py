"""The composition root: the CLI, the web app's assembly, the worker and the demo data.

Everything here wires the layers below it together (channel adapters in ``bot/``, the
``inbox``, ``rules``, ``knowledge_base`` and ``core``); nothing below imports it.
"""
