"""The Rasa project generated from the knowledge base (``otklik rasa export``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from knowledge_base.entities import extract_entities
from knowledge_base.entries import KBEntry
from knowledge_base.rasa_export import (
    DETAIL_SAMPLES,
    ENTITY_PATTERNS,
    RasaExportError,
    annotate_entities,
    build_project,
    entity_synonyms,
    intent_examples,
    write_project,
)
from otklik.cli import app

SAMPLE_ENTRIES: list[dict[str, Any]] = [
    {
        "id": "appeal_status",
        "topic": "Обращения",
        "life_situation": "Обращение в ведомство",
        "question": "Как узнать статус моего обращения?",
        "phrasings": [
            "где моё обращение 2024-000123",
            "что с моей жалобой",
            "когда ответят на обращение",
        ],
        "synonyms": ["обращение = заявка"],
        "short_answer": "Статус можно узнать по номеру обращения. Напишите нам в личные сообщения.",
        "full_answer": "Назовите номер обращения, и мы сообщим его статус.",
        "department": "Отдел работы с обращениями",
    },
    {
        "id": "registration_address",
        "topic": "Регистрация",
        "life_situation": "Переезд",
        "question": "Как оформить регистрацию по месту жительства?",
        "phrasings": ["как прописаться в квартире", "нужна прописка ребёнку [срочно]"],
        "synonyms": ["прописка = регистрация"],
        "short_answer": "Регистрацию оформляют через Госуслуги или МФЦ.",
        "full_answer": "Подайте заявление через Госуслуги или в МФЦ.",
        "department": "Отдел по вопросам миграции",
    },
]
#: Rasa's inline entity markup: [value](entity)
MARKUP = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def sample_entries(**changes: Any) -> list[KBEntry]:
    return [KBEntry.model_validate({**item, **changes}) for item in SAMPLE_ENTRIES]


def examples_of(nlu: dict[str, Any], key: str, name: str) -> list[str]:
    block = next(item["examples"] for item in nlu["nlu"] if item.get(key) == name)
    assert block.endswith("\n")
    lines = block.splitlines()
    assert all(line.startswith("- ") for line in lines)
    return [line[2:] for line in lines]


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, Any]:
    write_project(build_project(sample_entries()), tmp_path)
    return {
        name: yaml.safe_load((tmp_path / name).read_text(encoding="utf-8"))
        for name in ("config.yml", "domain.yml", "data/nlu.yml", "data/rules.yml")
    }


def test_config_is_a_russian_pipeline_without_pretrained_language_models(exported):
    config = exported["config.yml"]
    assert config["language"] == "ru"
    assert config["recipe"] == "default.v1"
    names = [step["name"] for step in config["pipeline"]]
    assert names[0] == "WhitespaceTokenizer"
    assert {"DIETClassifier", "RegexEntityExtractor", "FallbackClassifier"} <= set(names)
    assert names.index("EntitySynonymMapper") > names.index("RegexEntityExtractor")
    assert not {"SpacyNLP", "LanguageModelFeaturizer", "MitieNLP"} & set(names)
    char_ngrams = [s for s in config["pipeline"] if s.get("analyzer") == "char_wb"]
    assert char_ngrams, "char n-grams cope with Russian word endings"


def test_every_entry_is_an_intent_answered_by_its_short_answer(exported):
    domain = exported["domain.yml"]
    assert domain["intents"] == ["appeal_status", "registration_address"]
    assert domain["responses"]["utter_appeal_status"] == [
        {"text": SAMPLE_ENTRIES[0]["short_answer"]}
    ]
    assert set(domain["entities"]) == {"appeal_number", "phone", "date", "address"}
    rules = exported["data/rules.yml"]["rules"]
    assert {
        "rule": "answer registration_address",
        "steps": [{"intent": "registration_address"}, {"action": "utter_registration_address"}],
    } in rules
    assert any(rule["steps"][0] == {"intent": "nlu_fallback"} for rule in rules)


def test_question_and_phrasings_are_the_training_examples(exported):
    nlu = exported["data/nlu.yml"]
    assert nlu["version"] == "3.1"
    examples = [MARKUP.sub(r"\1", ex) for ex in examples_of(nlu, "intent", "appeal_status")]
    assert examples[:4] == [
        "Как узнать статус моего обращения?",
        "где моё обращение 2024-000123",
        "что с моей жалобой",
        "когда ответят на обращение",
    ]


def test_appeal_number_in_a_phrasing_is_annotated_as_an_entity(exported):
    examples = examples_of(exported["data/nlu.yml"], "intent", "appeal_status")
    assert "где моё обращение [2024-000123](appeal_number)" in examples


def test_synonym_missing_from_examples_gets_an_example_of_its_own():
    examples = intent_examples(sample_entries()[0])
    assert "где моё заявка [2024-000123](appeal_number)" in examples
    registration = intent_examples(sample_entries()[1])
    assert "нужна регистрация ребёнку (срочно)" in registration


def test_synonyms_are_listed_for_the_synonym_mapper(exported):
    nlu = exported["data/nlu.yml"]
    assert examples_of(nlu, "synonym", "обращение") == ["заявка"]
    assert examples_of(nlu, "synonym", "прописка") == ["регистрация"]


def test_square_brackets_of_a_phrasing_are_not_read_as_entity_markup(exported):
    examples = examples_of(exported["data/nlu.yml"], "intent", "registration_address")
    assert "нужна прописка ребёнку (срочно)" in examples
    assert not any("[срочно]" in example for example in examples)


def test_entity_patterns_are_exported_as_regexes_and_taught_by_examples(exported):
    nlu = exported["data/nlu.yml"]
    for kind, pattern in ENTITY_PATTERNS.items():
        assert examples_of(nlu, "regex", kind) == [pattern]
    examples = [
        ex
        for name in ("appeal_status", "registration_address")
        for ex in examples_of(nlu, "intent", name)
    ]
    taught = {kind for example in examples for _, kind in MARKUP.findall(example)}
    assert taught == set(ENTITY_PATTERNS)


@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 20])
def test_every_detail_sample_is_added_to_some_entry_whatever_the_kb_size(count):
    entries = [sample_entries(id=f"entry_{i}")[0] for i in range(count)]
    nlu = yaml.safe_load(build_project(entries).files["data/nlu.yml"])
    examples = [ex for entry in entries for ex in examples_of(nlu, "intent", entry.id)]
    added = {sample for sample in DETAIL_SAMPLES if any(sample in ex for ex in examples)}
    assert added == set(DETAIL_SAMPLES)
    per_entry = [
        sum(1 for ex in examples_of(nlu, "intent", e.id) if ex.startswith(e.question + " ["))
        for e in entries
    ]
    assert min(per_entry) >= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("статус 2024-000123?", "статус [2024-000123](appeal_number)?"),
        ("звоните +7 912 345-67-89", "звоните [+7 912 345-67-89](phone)"),
        ("звоните 8(495)123-45-67 днём", "звоните [8(495)123-45-67](phone) днём"),
        ("подал 05.11.2024", "подал [05.11.2024](date)"),
        ("номер 12024-0001234 неверный", "номер 12024-0001234 неверный"),
        ("в 2024 году", "в 2024 году"),
    ],
)
def test_entity_annotation_marks_exactly_the_entity_values(text, expected):
    assert annotate_entities(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Обращение 2024-000123 от 3 Марта 2025, телефон 8 (912) 345-67-89",
        "течёт крыша, ул. Ленина, д. 5, кв. 12, звоните +79031234567",
        "Пр-т Победы дом 7а Сломан лифт с 01.02.25",
    ],
)
def test_rasa_finds_the_same_entities_as_the_embedded_extractor(text):
    """Rasa's RegexEntityExtractor runs each pattern with ``re.finditer`` (case-sensitive)."""
    embedded = {(e.kind, e.start) for e in extract_entities(text)}
    assert len(embedded) >= 2
    rasa = {
        (kind, match.start())
        for kind, pattern in ENTITY_PATTERNS.items()
        for match in re.finditer(pattern, text)
    }
    assert rasa == embedded


def test_entry_id_that_cannot_be_an_intent_name_is_rejected():
    with pytest.raises(RasaExportError, match="статус обращения"):
        build_project(sample_entries(id="статус обращения")[:1])


def test_empty_knowledge_base_cannot_be_exported():
    with pytest.raises(RasaExportError, match="no entries"):
        build_project([])


def test_export_is_stable_so_an_unchanged_kb_is_not_retrained(tmp_path):
    first = build_project(sample_entries())
    assert build_project(sample_entries()).digest == first.digest
    changed = sample_entries()
    changed[0].phrasings.append("статус жалобы")
    assert build_project(changed).digest != first.digest
    write_project(first, tmp_path)
    assert (tmp_path / "export.sha256").read_text().strip() == first.digest


def test_stale_training_files_are_removed_on_export(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "old_intents.yml").write_text("version: '3.1'\n")
    write_project(build_project(sample_entries()), tmp_path)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["nlu.yml", "rules.yml"]


def test_cli_exports_the_entries_directory(tmp_path):
    entries_dir = tmp_path / "entries"
    entries_dir.mkdir()
    (entries_dir / "sample.yaml").write_text(
        yaml.safe_dump(SAMPLE_ENTRIES, allow_unicode=True), encoding="utf-8"
    )
    out = tmp_path / "rasa"
    result = CliRunner().invoke(app, ["rasa", "export", str(out), "--entries", str(entries_dir)])
    assert result.exit_code == 0, result.output
    assert "2 intents" in result.output
    assert {p.name for p in out.iterdir()} >= {"config.yml", "domain.yml", "data"}


def test_cli_names_the_problem_when_the_kb_is_invalid(tmp_path):
    (tmp_path / "broken.yaml").write_text("- id: x\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["rasa", "export", str(tmp_path / "out"), "--entries", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "broken.yaml" in result.output


def test_a_word_in_two_synonym_groups_is_mapped_once():
    first, second = sample_entries()
    first.synonyms = ["нет = отключили", "Свет = электричество"]
    second.synonyms = ["нет = пропала", "отключили = выключили", "свет = освещение"]
    assert entity_synonyms([first, second]) == {
        "нет": ["отключили", "пропала", "выключили"],
        "свет": ["электричество", "освещение"],
    }


def test_shared_synonym_groups_give_variants_of_whole_words_only():
    entry = sample_entries()[1]
    examples = intent_examples(entry, [["прописаться", "зарегистрироваться"], ["ку", "КУ-КУ"]])
    assert "как зарегистрироваться в квартире" in examples
    assert not any("КУ-КУ" in example for example in examples), "«ку» is inside «ребёнку»"
