"""Generate a Rasa 3.6 project (NLU training data, domain, config) from the knowledge base.

Every KB entry becomes one intent named after the entry id; its question and phrasings are
the training examples and its short answer is the response. Entities the bot needs (appeal
number, phone, date, address) are extracted by regular expressions, so no language model has
to be downloaded: the pipeline uses only sparse features trained from our own data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge_base.entities import (
    ADDRESS_RE,
    APPEAL_NUMBER_RE,
    DATE_RE,
    PHONE_RE,
    extract_entities,
)
from knowledge_base.entries import KBEntry
from knowledge_base.search import entry_synonym_groups

#: Version of Rasa's training data format understood by Rasa 3.x.
RASA_DATA_VERSION = "3.1"
ASSISTANT_ID = "otklik-knowledge-base"

#: Rasa's intent for "not understood" (FallbackClassifier): no KB entry.
FALLBACK_INTENT = "nlu_fallback"
SERVICE_INTENTS = frozenset({FALLBACK_INTENT})
#: DIET epochs. Measured on the 94-entry KB: 50 epochs reach 100 % on the training data and
#: the best held-out accuracy; 150 made it overconfident (fewer off-topic hand-offs). With 256
#: entries 50 epochs left near entries (the funeral allowance and a free funeral) under the
#: fallback's ambiguity margin on their own questions: 80.
DEFAULT_EPOCHS = 80


def _rasa_pattern(regex: re.Pattern[str]) -> str:
    """The pattern as Rasa runs it (case-sensitively), keeping the regex's own IGNORECASE."""
    return f"(?i:{regex.pattern})" if regex.flags & re.IGNORECASE else regex.pattern


#: The embedded NLU's entity patterns, given to Rasa's RegexEntityExtractor (Python ``re``
#: too) so that both backends find the same entities.
ENTITY_PATTERNS: dict[str, str] = {
    "appeal_number": _rasa_pattern(APPEAL_NUMBER_RE),
    "phone": _rasa_pattern(PHONE_RE),
    "date": _rasa_pattern(DATE_RE),
    "address": _rasa_pattern(ADDRESS_RE),
}

#: Details a citizen adds to a question. Each entry gets one example with one of them, in turn:
#: Rasa's regex extractor uses only the patterns of entities seen in examples, and spread over
#: all intents a number says nothing about the intent (so "статус обращения 2024-000123"
#: stays a question about the status, and a bare number is "not understood", with entities).
DETAIL_SAMPLES = (
    "2024-000123",
    "+7 912 345-67-89",
    "ул. Ленина, д. 5",
    "12.03.2024",
    "2025-104551",
    "8 (495) 123-45-67",
    "улица Мира 12, кв. 4",
    "3 марта 2025",
)

DEFAULT_RESPONSE = (
    "Не удалось точно понять вопрос. Я передам сообщение специалисту, он ответит вам."
)

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_WS_RE = re.compile(r"\s+")


class RasaExportError(ValueError):
    pass


@dataclass(frozen=True)
class RasaProject:
    """The generated project: relative path -> file text."""

    files: dict[str, str]

    @property
    def digest(self) -> str:
        """A hash of every file, to tell whether the model needs training again."""
        sha = hashlib.sha256()
        for path in sorted(self.files):
            sha.update(path.encode())
            sha.update(b"\0")
            sha.update(self.files[path].encode())
            sha.update(b"\0")
        return sha.hexdigest()


class _Literal(str):
    """A string dumped as a YAML literal block (``|``), as Rasa writes its examples."""


class _Dumper(yaml.SafeDumper):
    pass


def _literal_representer(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


_Dumper.add_representer(_Literal, _literal_representer)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def clean_example(text: str) -> str:
    """One line of plain text that Rasa will not read as entity markup."""
    text = _WS_RE.sub(" ", text).strip()
    return text.replace("[", "(").replace("]", ")")


def annotate_entities(text: str) -> str:
    """Mark the entities the embedded extractor finds with Rasa's ``[value](entity)``."""
    for entity in reversed(extract_entities(text)):
        text = f"{text[: entity.start]}[{entity.value}]({entity.kind}){text[entity.end :]}"
    return text


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def _synonym_variants(examples: Sequence[str], groups: Iterable[list[str]]) -> list[str]:
    """Examples with one synonym swapped in, for each synonym the examples lack.

    Rasa's synonym mapping applies only to extracted entities, so for intent classification
    the synonyms have to appear in the examples themselves.
    """
    variants: list[str] = []
    for group in groups:
        patterns = {word: _word_pattern(word) for word in group}
        present = {w for w, p in patterns.items() if any(p.search(ex) for ex in examples)}
        if not present:
            continue
        source_word = next(w for w in group if w in present)
        source = next(ex for ex in examples if patterns[source_word].search(ex))
        variants.extend(
            patterns[source_word].sub(word, source, count=1)
            for word in group
            if word not in present
        )
    return variants


def details_for(index: int, count: int) -> list[str]:
    """The detail samples the entry number ``index`` of ``count`` gets: each sample is used."""
    samples = len(DETAIL_SAMPLES)
    if count >= samples:
        return [DETAIL_SAMPLES[index % samples]]
    return [DETAIL_SAMPLES[j] for j in range(index, samples, count)]


def intent_examples(
    entry: KBEntry, shared_synonyms: Sequence[list[str]] = (), details: Sequence[str] = ()
) -> list[str]:
    """Training examples of one entry: question, phrasings, synonym variants, and the question
    with each of ``details`` added; deduplicated.

    ``shared_synonyms`` are the knowledge base's common groups (``synonyms.yaml``), used
    together with the entry's own ``a = b`` groups.
    """
    base = [clean_example(text) for text in (entry.question, *entry.phrasings)]
    base = [text for text in base if text]
    groups = [*entry_synonym_groups(entry)[0], *shared_synonyms]
    seen: set[str] = set()
    examples: list[str] = []
    with_details = [f"{base[0]} {detail}" for detail in details]
    for text in (*base, *_synonym_variants(base, groups), *with_details):
        key = text.lower()
        if key not in seen:
            seen.add(key)
            examples.append(annotate_entities(text))
    return examples


def _examples_block(examples: Iterable[str]) -> _Literal:
    return _Literal("".join(f"- {example}\n" for example in examples))


def _check_ids(entries: Sequence[KBEntry]) -> None:
    if not entries:
        raise RasaExportError("the knowledge base has no entries: nothing to train Rasa on")
    for entry in entries:
        if not _ID_RE.match(entry.id):
            raise RasaExportError(
                f"entry id {entry.id!r} cannot be a Rasa intent name: "
                "use latin letters, digits, '_', '.' or '-'"
            )
        if entry.id in SERVICE_INTENTS:
            raise RasaExportError(f"entry id {entry.id!r} is reserved for the Rasa export")


def build_config(epochs: int = DEFAULT_EPOCHS) -> dict[str, Any]:
    """A Russian pipeline of sparse features only: quick to train on two CPU cores."""
    return {
        "recipe": "default.v1",
        "assistant_id": ASSISTANT_ID,
        "language": "ru",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer", "case_sensitive": True, "use_word_boundaries": False},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer", "lowercase": True},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 2,
                "max_ngram": 4,
                "lowercase": True,
            },
            {
                "name": "DIETClassifier",
                "epochs": epochs,
                "entity_recognition": False,
                "number_of_transformer_layers": 1,
                "transformer_size": 128,
                "constrain_similarities": True,
                "random_seed": 42,
            },
            {
                "name": "RegexEntityExtractor",
                # Case matters in the address pattern; others carry their own (?i:...).
                "case_sensitive": True,
                "use_lookup_tables": True,
                "use_regexes": True,
                "use_word_boundaries": False,
            },
            {"name": "EntitySynonymMapper"},
            {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.05},
        ],
        "policies": [{"name": "RulePolicy"}],
    }


def build_domain(entries: Sequence[KBEntry]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        f"utter_{entry.id}": [{"text": entry.short_answer}] for entry in entries
    }
    responses["utter_default"] = [{"text": DEFAULT_RESPONSE}]
    return {
        "version": RASA_DATA_VERSION,
        "intents": [entry.id for entry in entries],
        "entities": list(ENTITY_PATTERNS),
        "responses": responses,
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }


def build_nlu(
    entries: Sequence[KBEntry], shared_synonyms: Sequence[list[str]] = ()
) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "intent": entry.id,
            "examples": _examples_block(
                intent_examples(entry, shared_synonyms, details_for(i, len(entries)))
            ),
        }
        for i, entry in enumerate(entries)
    ]
    items.extend(
        {"regex": kind, "examples": _examples_block([pattern])}
        for kind, pattern in ENTITY_PATTERNS.items()
    )
    items.extend(
        {"synonym": word, "examples": _examples_block(others)}
        for word, others in entity_synonyms(entries).items()
    )
    return {"version": RASA_DATA_VERSION, "nlu": items}


def entity_synonyms(entries: Sequence[KBEntry]) -> dict[str, list[str]]:
    """Canonical word -> its synonyms, each word mapped once (Rasa rejects conflicting maps).

    A word already mapped by an earlier group keeps that mapping; a group whose first word is
    already mapped joins that word's canonical form.
    """
    canonical_of: dict[str, str] = {}
    synonyms: dict[str, list[str]] = {}
    for entry in entries:
        for group in entry_synonym_groups(entry)[0]:
            words = [word.lower() for word in group]
            canonical = canonical_of.get(words[0], words[0])
            canonical_of[canonical] = canonical
            for word in words[1:]:
                if word not in canonical_of:
                    canonical_of[word] = canonical
                    synonyms.setdefault(canonical, []).append(word)
    return synonyms


def build_rules(entries: Sequence[KBEntry]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {
            "rule": f"answer {entry.id}",
            "steps": [{"intent": entry.id}, {"action": f"utter_{entry.id}"}],
        }
        for entry in entries
    ]
    rules.append(
        {
            "rule": "hand off what was not understood",
            "steps": [{"intent": FALLBACK_INTENT}, {"action": "utter_default"}],
        }
    )
    return {"version": RASA_DATA_VERSION, "rules": rules}


def build_project(
    entries: Sequence[KBEntry],
    *,
    shared_synonyms: Sequence[list[str]] = (),
    epochs: int = DEFAULT_EPOCHS,
) -> RasaProject:
    """The whole Rasa project for ``entries``, as file texts."""
    _check_ids(entries)
    header = "# Generated by `otklik rasa export` from the knowledge base. Do not edit.\n"
    return RasaProject(
        files={
            "config.yml": header + _dump(build_config(epochs)),
            "domain.yml": header + _dump(build_domain(entries)),
            "data/nlu.yml": header + _dump(build_nlu(entries, shared_synonyms)),
            "data/rules.yml": header + _dump(build_rules(entries)),
            "endpoints.yml": header + "# NLU only: no action server, in-memory tracker store.\n",
            "credentials.yml": header + _dump({"rest": None}),
        }
    )


def write_project(project: RasaProject, directory: Path) -> None:
    """Write the project into ``directory``; stale YAML left in ``data/`` is removed."""
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob("*.yml"):
        if f"data/{stale.name}" not in project.files:
            stale.unlink()
    for relative, text in project.files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    (directory / "export.sha256").write_text(project.digest + "\n", encoding="ascii")
