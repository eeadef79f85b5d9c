"""The lowest layer: what every other package may use and that imports none of them.

The normalized inbound event and its channel enum (``core.events``), the clock
(``core.clock``), code-point cleaning (``core.codepoints``) and bounded numbers
(``core.bounded``).
"""
