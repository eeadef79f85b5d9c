"""The readability check tells a plain answer from its bureaucratic paraphrase."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge_base.readability import (
    ReadabilityBar,
    check_text,
    flesch_kincaid_grade,
    flesch_reading_ease,
    grade_text,
    load_bar,
    load_stock_phrases,
    save_bar,
    smog,
)
from knowledge_base.russian import sentences, syllables

#: (plain answer, the same content in officialese) — written for these tests.
PAIRS = [
    (
        "Горячую воду включат 15 мая. Сейчас на вашей улице меняют трубы. "
        "Если воды не будет и после 15 мая, напишите нам.",
        "В связи с проведением плановых работ по замене участка трубопровода горячего "
        "водоснабжения предоставление коммунальной услуги будет возобновлено в срок до 15 мая. "
        "В случае если по истечении указанного срока водоснабжение не будет восстановлено, "
        "просим направить обращение в адрес Департамента.",
    ),
    (
        "Мы рассмотрели ваше обращение. Яму на дороге заделают до 1 июня.",
        "Доводим до вашего сведения, что ваше обращение было рассмотрено, и в целях обеспечения "
        "безопасности дорожного движения осуществление ремонта дорожного покрытия "
        "запланировано в срок до 1 июня.",
    ),
    (
        "Пособие можно оформить в МФЦ. Возьмите паспорт и свидетельство о рождении. "
        "Деньги придут за 10 дней.",
        "Для получения пособия заявителю необходимо осуществить подачу заявления в "
        "многофункциональный центр предоставления государственных услуг с приложением "
        "документа, удостоверяющего личность, и свидетельства о рождении ребёнка, по "
        "результатам рассмотрения которого денежные средства перечисляются в течение 10 дней.",
    ),
    (
        "Мусор вывезут завтра утром. Если баки останутся полными, пришлите нам фото.",
        "Информируем, что вывоз твёрдых коммунальных отходов с контейнерной площадки будет "
        "осуществлён региональным оператором в кратчайшие сроки. При наличии нарушений "
        "графика вывоза просим уведомить Департамент посредством направления фотоматериалов.",
    ),
    (
        "Штраф можно оплатить за полцены в первые 20 дней. Сумму со скидкой видно на Госуслугах.",
        "Оплата административного штрафа в размере половины суммы наложенного штрафа "
        "производится лицом, привлечённым к административной ответственности, не позднее "
        "двадцати дней со дня вынесения постановления о наложении административного штрафа.",
    ),
]


@pytest.mark.parametrize(("plain", "bureaucratic"), PAIRS)
def test_plain_answer_passes_and_its_bureaucratic_paraphrase_fails(
    plain: str, bureaucratic: str
) -> None:
    plain_report = check_text(plain)
    heavy_report = check_text(bureaucratic)
    assert plain_report.ok, plain_report.failures
    assert not heavy_report.ok
    assert heavy_report.grade_level > plain_report.grade_level + 5
    assert heavy_report.kantselyarit_per_100_words > plain_report.kantselyarit_per_100_words
    assert heavy_report.flesch_reading_ease < plain_report.flesch_reading_ease


def test_syllables_are_counted_by_vowel_letters() -> None:
    assert syllables("молоко") == 3
    assert syllables("ёжик") == 2
    assert syllables("МФЦ") == 0
    assert syllables("водоснабжение") == 6


def test_formulas_use_the_russian_coefficients() -> None:
    # ASL = 10 words per sentence, ASW = 2 syllables per word.
    assert flesch_reading_ease(10, 2) == pytest.approx(206.835 - 13 - 120.2)
    assert flesch_kincaid_grade(10, 2) == pytest.approx(3.18 + 28.4 - 30.5)
    assert smog(complex_words=2, n_sentences=2) == pytest.approx(1.1 * 64.6**0.5 + 0.05)


def test_report_counts_words_sentences_and_complex_words() -> None:
    report = check_text("Мама мыла раму. Водоснабжение отключили.")
    assert report.words == 5
    assert report.sentences == 2
    assert report.syllables == 2 + 2 + 2 + 6 + 4
    # plainrussian.ru: a complex word has more than four syllables.
    assert report.complex_words == 1


def test_grade_is_reported_as_a_school_class() -> None:
    assert grade_text(7.4) == "7-й класс"
    assert grade_text(0.2) == "1-й класс"
    assert grade_text(13) == "2-й курс вуза"
    assert check_text("Воду дадут завтра.").grade_text.endswith("класс")


def test_stock_phrase_is_reported_with_offsets_and_a_plain_replacement() -> None:
    text = "Позвоните нам. В случае если воды нет, мы приедем."
    issues = [i for i in check_text(text).issues if i.kind == "stock_phrase"]
    assert len(issues) == 1
    issue = issues[0]
    assert text[issue.start : issue.end] == "В случае если" == issue.fragment
    assert issue.suggestion == "если"


def test_stock_phrases_match_other_word_forms() -> None:
    issues = check_text("Ремонт осуществляется бригадой. Денежных средств хватит.").issues
    fragments = {i.fragment for i in issues if i.kind == "stock_phrase"}
    assert fragments == {"осуществляется", "Денежных средств"}


def test_kantselyarit_list_has_at_least_forty_phrases_with_replacements() -> None:
    phrases = load_stock_phrases()
    assert len(phrases) >= 40
    by_phrase = {p.phrase: p.suggestion for p in phrases}
    assert by_phrase["в целях"] == "чтобы"
    assert by_phrase["денежные средства"] == "деньги"


def test_verbal_nouns_are_flagged_unless_whitelisted() -> None:
    text = "Заявление принято. Осуществление ремонта начнётся завтра. Отопление включат."
    flagged = {i.fragment for i in check_text(text).issues if i.kind == "verbal_noun"}
    assert flagged == {"Осуществление"}


def test_chain_of_genitives_is_flagged() -> None:
    text = "Мы работаем ради повышения эффективности реализации мер."
    chains = [i for i in check_text(text).issues if i.kind == "genitive_chain"]
    assert len(chains) == 1
    assert chains[0].fragment == "повышения эффективности реализации мер"


def test_comma_breaks_a_genitive_chain() -> None:
    text = "Нет воды, света, газа."
    assert not [i for i in check_text(text).issues if i.kind == "genitive_chain"]


def test_passive_constructions_are_flagged_but_ordinary_reflexive_verbs_are_not() -> None:
    text = "Ваше обращение было рассмотрено. Ремонт производится ночью. МФЦ находится рядом."
    passive = {i.fragment for i in check_text(text).issues if i.kind == "passive"}
    assert passive == {"рассмотрено", "производится"}


def test_long_sentence_is_reported_and_fails_the_bar() -> None:
    long_sentence = " ".join(["слово"] * 25) + "."
    report = check_text("Коротко. " + long_sentence)
    issues = [i for i in report.issues if i.kind == "long_sentence"]
    assert len(issues) == 1
    assert issues[0].start == len("Коротко. ")
    assert not report.ok


def test_bar_is_configurable_from_yaml(tmp_path: Path) -> None:
    text = "Горячую воду включат 15 мая. Напишите нам, если воды не будет."
    assert check_text(text).ok
    strict = tmp_path / "bar.yaml"
    strict.write_text("max_grade: 1\n", encoding="utf-8")
    report = check_text(text, load_bar(strict))
    assert not report.ok
    assert "нужно не выше 1" in report.failures[0]


def test_density_of_short_text_is_smoothed() -> None:
    one_finding = "Осуществление ремонта будет завтра."
    smoothed = check_text(one_finding, ReadabilityBar(min_words_for_density=40))
    raw = check_text(one_finding, ReadabilityBar(min_words_for_density=1))
    assert smoothed.kantselyarit_per_100_words == pytest.approx(100 / 40 * 1)
    assert raw.kantselyarit_per_100_words > smoothed.kantselyarit_per_100_words


def test_empty_and_odd_input_does_not_crash() -> None:
    for text in ["", "   ", "12345", "!!!", "МФЦ"]:
        report = check_text(text)
        assert report.ok
        assert report.grade_level == 0


def test_sentences_do_not_split_at_address_abbreviations_or_dates() -> None:
    text = "Ждём вас на ул. Ленина, д. 5 в 10:00. Приходите 12.03.2026!\nСписок документов"
    parts = [s.text for s in sentences(text)]
    assert parts == [
        "Ждём вас на ул. Ленина, д. 5 в 10:00.",
        "Приходите 12.03.2026!",
        "Список документов",
    ]


RUSSIAN_TEXT = st.text(
    alphabet=st.sampled_from(list("абвгдеёжзийклмнопрстуфхцчшщъыьэюя АЕОУ.,!?\n-«»0123456789")),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(RUSSIAN_TEXT)
def test_any_text_gets_a_report_whose_offsets_point_at_the_fragment(text: str) -> None:
    report = check_text(text)
    assert report.grade_level >= 0
    for issue in report.issues:
        assert 0 <= issue.start < issue.end <= len(text)
        assert text[issue.start : issue.end] == issue.fragment


def test_bar_saved_by_the_admin_ui_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "bar.yaml"
    bar = load_bar().model_copy(update={"max_grade": 8.5, "max_sentence_words": 15})
    save_bar(bar, path)
    assert load_bar(path) == bar
