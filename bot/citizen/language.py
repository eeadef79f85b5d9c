"""A cheap guess whether a message is written in a language other than Russian.

No model: the script and a few letters tell enough for routing. Latin script is taken as
English unless it carries Uzbek marks (oʻ, gʻ, sh/ch words); Cyrillic with letters Russian
does not have is Tajik (ӣ ӯ ҷ ҳ), Uzbek (ў қ ғ ҳ) or Kazakh (ә ө ұ ү ң і). Russian typed in
Latin letters (translit) is recognised by common words, or by reading as Russian words once
transliterated (``knowledge_base.translit``), and left to the normal flow: the knowledge base
understands it.
"""

from __future__ import annotations

import re

from knowledge_base.translit import looks_like_russian

_WORD = re.compile(r"[^\W\d_]+(?:['ʻʼ‘’][^\W\d_]+)?")
_TAJIK = set("ӣӯҷ")
_UZBEK_CYRILLIC = set("ў")
_KAZAKH = set("әөұүңі")
_SHARED_CENTRAL_ASIAN = set("қғҳ")
_UZBEK_LATIN_WORDS = {
    "salom", "assalomu", "alaykum", "rahmat", "iltimos", "qanday", "qachon", "kerak", "yordam",
    "uy", "menga", "bilan", "uchun", "emas", "bor", "yoq", "ishlamayapti", "suv", "qayerda",
}  # fmt: skip
_TRANSLIT_RUSSIAN_WORDS = {
    "zdravstvuyte", "zdravstvuite", "privet", "pozhaluysta", "pozhalujsta", "spasibo", "kogda",
    "pochemu", "gde", "nas", "net", "vody", "musor", "dvore", "ulitse", "dom", "kak", "chto",
}  # fmt: skip


def detect_foreign_language(text: str) -> str | None:
    """An ISO 639-1 code (``en``, ``uz``, ``tg``, ``kk``) if the text is not Russian, else None.

    Too little text (fewer than three letters) is never called foreign.
    """
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 3:
        return None
    lowered = {c.lower() for c in letters}
    if lowered & _TAJIK:
        return "tg"
    if lowered & _UZBEK_CYRILLIC:
        return "uz"
    if lowered & _KAZAKH:
        return "kk"
    cyrillic = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    if lowered & _SHARED_CENTRAL_ASIAN:
        return "tg"
    latin = sum(1 for c in letters if c.isascii())
    if latin < 0.6 * len(letters) or latin <= cyrillic:
        return None
    words = {w.lower() for w in _WORD.findall(text)}
    if words & _TRANSLIT_RUSSIAN_WORDS or looks_like_russian(text):
        return None
    if words & _UZBEK_LATIN_WORDS or re.search(r"[og]['ʻʼ‘’]", text.lower()):
        return "uz"
    return "en"
