"""FAQ retrieval: Russian word forms, synonyms, typos, and hand-off when unsure."""

from __future__ import annotations

import pytest

from knowledge_base.entries import KBEntry, load_entries
from knowledge_base.search import (
    Analyzer,
    KnowledgeBase,
    SearchConfig,
    bounded_levenshtein,
    deletions,
    load_search_config,
)

REQUIRED_TOPICS = {
    "ЖКХ",
    "Дворы и дороги",
    "Мусор",
    "Отключения воды и тепла",
    "Транспорт",
    "Социальная поддержка",
    "Пенсии",
    "Документы и МФЦ",
    "Детский сад и школа",
    "Здоровье",
    "Платежи и штрафы",
    "Животные",
    "Доступная среда",
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def test_knowledge_base_has_eighty_entries_covering_every_agency_topic() -> None:
    entries = load_entries()
    assert len(entries) >= 80
    assert {entry.topic for entry in entries} >= REQUIRED_TOPICS
    assert all(len(entry.phrasings) >= 3 for entry in entries)
    assert all(entry.life_situation for entry in entries)


def test_coverage_reaches_250_entries_over_every_life_situation_of_the_registry() -> None:
    """Issue #13: an agency's contact centre answers hundreds of typical questions, for
    each life situation of the standard's registry, not a handful of topics."""
    from knowledge_base.validate import load_registry

    entries = load_entries()
    registry = load_registry()
    assert len(entries) >= 250
    per_situation = {name: 0 for name in registry.life_situations}
    for entry in entries:
        per_situation[entry.life_situation] += 1
    assert min(per_situation.values()) >= 4, per_situation
    assert {entry.topic for entry in entries} == set(registry.topics)


def test_needs_that_cannot_be_met_say_why() -> None:
    refusals = [entry for entry in load_entries() if entry.cannot_because]
    assert len(refusals) >= 10
    assert any(entry.available_when for entry in refusals)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Other word forms of the same words.
        ("прописали ли ребёнка в квартире", "docs-registration"),
        # Synonyms: регистрация = прописка, УК = управляющая компания, ГВС = горячая вода.
        ("регистрация по месту жительства", "docs-registration"),
        ("жалоба на управляющую организацию", "zhkh-uk-complaint"),
        ("ГВС отключили", "outage-hot-water-summer"),
        # Typos and colloquial words.
        ("прописька в квартире", "docs-registration"),
        ("записатся к врачу", "health-doctor-appointment"),
        ("бездомые сабаки во дворе", "animals-stray-dogs"),
        ("коммуналка дорогая, есть субсидия?", "social-housing-subsidy"),
    ],
)
def test_query_finds_the_entry_that_answers_it(
    kb: KnowledgeBase, query: str, expected: str
) -> None:
    assert kb.search(query, k=1)[0].entry_id == expected


def test_synonyms_share_a_retrieval_term() -> None:
    analyzer = Analyzer([["ук", "управляющая компания"]])
    short = set(analyzer.terms("УК молчит"))
    long = set(analyzer.terms("управляющей компании дозвониться"))
    assert short & long == {"#syn0"}


def test_entry_synonyms_written_as_equalities_join_the_index() -> None:
    entry = KBEntry(
        id="x-kiosk",
        topic="Тест",
        life_situation="Тест",
        question="Где купить газету?",
        phrasings=["газета где продаётся", "купить газету", "киоск с газетами"],
        synonyms=["ларёк = киоск"],
        short_answer="В киоске. Напишите нам в личные сообщения.",
        full_answer="Газеты продают в киосках.",
        department="Тест",
    )
    other = entry.model_copy(update={"id": "x-other", "question": "Как пройти в библиотеку?"})
    other.phrasings = ["библиотека адрес", "где библиотека", "книги взять"]
    other.synonyms = []
    kb = KnowledgeBase([entry, other])
    assert kb.search("ларёк", k=1)[0].entry_id == "x-kiosk"


def test_hits_are_ranked_with_bounded_confidence(kb: KnowledgeBase) -> None:
    hits = kb.search("не вывозят мусор с площадки", k=4)
    assert len(hits) == 4
    assert hits[0].entry_id == "garbage-not-collected"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(0 <= h.confidence <= 1 for h in hits)
    assert hits[0].confidence > hits[1].confidence


def test_clear_question_is_answered(kb: KnowledgeBase) -> None:
    answer = kb.answer("Когда включат отопление в этом году?")
    assert not answer.handoff
    assert answer.hit is not None
    assert answer.hit.entry_id == "outage-heating-start"


@pytest.mark.parametrize("text", ["рецепт борща", "кто выиграл футбол", "фывапролд", "лол"])
def test_off_topic_message_is_handed_to_an_operator(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    assert answer.handoff
    assert answer.hit is None
    assert answer.reason in {"low_confidence", "no_match", "off_topic"}


def test_empty_message_is_handed_off_as_empty(kb: KnowledgeBase) -> None:
    assert kb.answer("   ").reason == "empty"


def test_handoff_threshold_is_configurable() -> None:
    strict = KnowledgeBase(load_entries(), config=SearchConfig(handoff_threshold=0.99))
    answer = strict.answer("в этом году отопление дадут в сентябре или позже?")
    assert answer.handoff
    assert answer.reason == "low_confidence"
    assert answer.hits[0].entry_id == "outage-heating-start"


def test_shipped_search_settings_load() -> None:
    config = load_search_config()
    assert 0 < config.handoff_threshold < 1


def test_address_and_date_do_not_dilute_confidence(kb: KnowledgeBase) -> None:
    bare = kb.search("нет горячей воды", k=1)[0]
    with_details = kb.search("нет горячей воды на ул. Ленина, д. 5 с 12.03.2026", k=1)[0]
    assert with_details.entry_id == bare.entry_id
    assert with_details.confidence == pytest.approx(bare.confidence, abs=0.05)


def test_bounded_levenshtein_stops_past_the_limit() -> None:
    assert bounded_levenshtein("прописьк", "прописк", 1) == 1
    assert bounded_levenshtein("кот", "кот", 1) == 0
    assert bounded_levenshtein("собак", "автобус", 2) == 3


def test_deletions_reach_every_word_within_the_edit_depth() -> None:
    assert deletions("кот", 1) == {"кот", "от", "кт", "ко"}
    # «прописька» and «прописка» share a string after one deletion each.
    assert deletions("прописьк", 1) & deletions("прописк", 1)


def test_a_single_candidate_gets_a_confidence_too() -> None:
    entry = KBEntry(
        id="x-kiosk",
        topic="Тест",
        life_situation="Тест",
        question="Где купить газету?",
        phrasings=["газета где продаётся", "купить газету", "киоск с газетами"],
        short_answer="В киоске. Напишите нам в личные сообщения.",
        full_answer="Газеты продают в киосках.",
        department="Тест",
    )
    hits = KnowledgeBase([entry]).search("газета", k=3)
    assert [hit.entry_id for hit in hits] == ["x-kiosk"]
    assert 0 < hits[0].confidence <= 1
