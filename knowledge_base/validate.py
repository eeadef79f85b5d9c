"""``otklik kb check``: everything the knowledge base is made of, validated at once.

Each problem names the file, the entry (or template) and the field, and says what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from knowledge_base.datafile import load_model
from knowledge_base.entries import ENTRIES_DIR, KBEntry, KBLoadError, load_entries
from knowledge_base.heldout import HELDOUT_FILE, load_heldout
from knowledge_base.readability import (
    KANTSELYARIT_FILE,
    ReadabilityBar,
    ReadabilityConfigError,
    check_text,
    load_bar,
    load_stock_phrases,
)
from knowledge_base.russian import sentences
from knowledge_base.search import (
    SEARCH_CONFIG_FILE,
    SYNONYMS_FILE,
    load_search_config,
    load_synonym_groups,
)
from knowledge_base.templates import (
    TEMPLATES_FILE,
    TemplateError,
    load_templates,
    render_template,
    template_problems,
)

REGISTRY_FILE = Path(__file__).resolve().parent / "registry.yaml"

#: Answer fields checked for readability and broken placeholders.
ANSWER_FIELDS = ("short_answer", "full_answer", "cannot_because", "available_when")
MIN_PHRASINGS = 3
MAX_SHORT_ANSWER_SENTENCES = 3

#: Sample values used to check that filled templates read well.
SAMPLE_VALUES: dict[str, str] = {
    "citizen_name": "Анна",
    "appeal_number": "2026-000123",
    "deadline": "12.03.2026",
    "address": "ул. Ленина, д. 5",
    "operator_name": "Мария",
    "agency_name": "Департамент городского хозяйства",
    "department": "Отдел ЖКХ",
    "answer": "Воду включат завтра.",
    "rating_link": "https://example.org/r/1",
    "phone": "112",
}


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class CheckResult:
    problems: list[Problem]
    entries: int = 0
    templates: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_knowledge_base(
    entries_dir: Path = ENTRIES_DIR,
    *,
    templates_file: Path = TEMPLATES_FILE,
    heldout_file: Path | None = HELDOUT_FILE,
    registry_file: Path = REGISTRY_FILE,
    bar: ReadabilityBar | None = None,
) -> CheckResult:
    problems: list[Problem] = []
    result = CheckResult(problems)
    configs: list[tuple[Path, Callable[[Path], Any]]] = [
        (KANTSELYARIT_FILE, load_stock_phrases),
        (SEARCH_CONFIG_FILE, load_search_config),
        (SYNONYMS_FILE, load_synonym_groups),
    ]
    for path, loader in configs:
        try:
            loader(path)
        except (ValueError, OSError) as exc:
            problems.append(Problem(str(path), str(exc)))
    if bar is None:
        try:
            bar = load_bar()
        except ReadabilityConfigError as exc:
            problems.append(Problem("readability.yaml", str(exc)))
            bar = ReadabilityBar()
    try:
        entries = load_entries(entries_dir)
    except KBLoadError as exc:
        problems.append(Problem(str(entries_dir), str(exc)))
        return result
    result.entries = len(entries)
    try:
        registry: Registry | None = load_registry(registry_file)
    except ValueError as exc:
        problems.append(Problem(str(registry_file), str(exc)))
        registry = None
    for entry in entries:
        problems.extend(check_entry(entry, bar, registry))
    try:
        templates = load_templates(templates_file)
    except TemplateError as exc:
        problems.append(Problem(str(templates_file), str(exc)))
    else:
        result.templates = len(templates)
        for template in templates.values():
            filled = render_template(template.text, SAMPLE_VALUES, templates={})
            report = check_text(filled, bar)
            for failure in report.failures:
                problems.append(Problem(f"{templates_file.name}: {template.id}", failure))
    if heldout_file is not None:
        problems.extend(_check_heldout(heldout_file, {entry.id for entry in entries}))
    return result


class Registry(BaseModel):
    """Allowed topics, life situations and departments (``registry.yaml``)."""

    topics: list[str]
    life_situations: list[str]
    departments: list[str]


def load_registry(path: Path = REGISTRY_FILE) -> Registry:
    return load_model(path, Registry)


def check_entry(
    entry: KBEntry, bar: ReadabilityBar, registry: Registry | None = None
) -> list[Problem]:
    where = f"{entry.source.name if entry.source else '?'}: {entry.id}"
    problems: list[Problem] = []
    if registry is not None:
        for field, allowed in (
            ("topic", registry.topics),
            ("life_situation", registry.life_situations),
            ("department", registry.departments),
        ):
            value = getattr(entry, field)
            if value not in allowed:
                problems.append(
                    Problem(where, f"{field} {value!r} is not in registry.yaml; add it there")
                )
    if len(entry.phrasings) < MIN_PHRASINGS:
        problems.append(
            Problem(where, f"phrasings: {len(entry.phrasings)}, write at least {MIN_PHRASINGS}")
        )
    if "личн" not in entry.short_answer.lower():
        problems.append(
            Problem(where, "short_answer: offer to continue in private («в личные сообщения»)")
        )
    short_sentences = sentences(entry.short_answer)
    if len(short_sentences) > MAX_SHORT_ANSWER_SENTENCES:
        problems.append(
            Problem(where, f"short_answer: at most {MAX_SHORT_ANSWER_SENTENCES} sentences")
        )
    if short_sentences and all("личн" in s.text.lower() for s in short_sentences):
        # The phone robot says the short answer without the sentences that send the caller to
        # private messages; with nothing left it would read the invitation aloud.
        problems.append(
            Problem(
                where,
                "short_answer: give the answer in a sentence of its own, without «личные»: "
                "the phone robot leaves out sentences about private messages",
            )
        )
    if entry.available_when and not entry.cannot_because:
        problems.append(Problem(where, "available_when without cannot_because: say why first"))
    for field in ANSWER_FIELDS:
        text = getattr(entry, field)
        if not text:
            continue
        for message in template_problems(text):
            problems.append(Problem(f"{where}: {field}", message))
        report = check_text(text, bar)
        for failure in report.failures:
            problems.append(Problem(f"{where}: {field}", failure))
    return problems


def _check_heldout(path: Path, known_ids: set[str]) -> list[Problem]:
    if not path.exists():
        return []
    try:
        heldout = load_heldout(path)
    except ValueError as exc:
        return [Problem(str(path), str(exc))]
    return [
        Problem(f"{path.name}: #{index}", f"unknown entry id {item.expected!r}")
        for index, item in enumerate(heldout.phrasings, start=1)
        if item.expected not in known_ids
    ]
