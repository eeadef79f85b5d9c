"""Understanding colloquial messages: the evaluation set, transliteration, lemmas, the slang
lexicon, «not our topic» and the calibrated confidence (issue #13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.datafile import DataFileError
from knowledge_base.entries import load_entries
from knowledge_base.evalset import (
    HOLDOUT2_FILE,
    HOLDOUT_FILE,
    load_colloquial,
    load_holdout,
    load_offtopic,
    measure,
)
from knowledge_base.russian import normalize, words
from knowledge_base.search import (
    FEATURES,
    Analyzer,
    Calibration,
    KnowledgeBase,
    load_calibration,
    load_lexicon,
    load_not_our_topic,
    load_search_config,
)
from knowledge_base.translit import looks_like_russian, to_cyrillic, word_to_cyrillic

#: Measured on the held-out part of eval/ (75 colloquial, 24 off-topic messages) with the
#: shipped calibration: right 69 (92.0 %), wrong 2 (2.7 %), handed off 4, right entry first
#: 73 (97.3 %), off-topic answered 0 of 24 (after the fourth pass of #13: a broad off-topic
#: training corpus, broader classes, the «chatter» feature; it hands off three more in-KB
#: messages here in exchange for the off-topic ones of the other held-out splits: 3 of 28
#: and 4 of 28 answered before, 0 and 1 after). Before it: right 72 (96.0 %), wrong 2
#: (2.7 %), right entry first 73, off-topic answered 1 of 24; before the third pass: right 71
#: (94.7 %), wrong 3 (4.0 %); before #13: right 57 (76.0 %), wrong 3 (4.0 %), off-topic
#: answered 4 of 24. The bars hold what is, so that a change that makes it worse fails here.
#: The other held-out splits (eval/holdout.yaml, eval/holdout2.yaml) are only measured by the
#: bench, never pinned here: a bar on them would invite tuning against them.
HELD_OUT_RIGHT_BAR = 0.92
#: The issue's target (≤ 3 %), reached on this split.
HELD_OUT_WRONG_BAR = 0.03
HELD_OUT_RIGHT_FIRST_BAR = 0.97
#: The issue's target, reached.
HELD_OUT_OFF_TOPIC_BAR = 0.05


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


# --- the evaluation set -------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join(normalize(t.text) for t in words(text))


def test_evaluation_set_is_large_split_and_names_real_entries() -> None:
    colloquial, offtopic = load_colloquial(), load_offtopic()
    assert len(colloquial.train) + len(colloquial.test) >= 120
    assert len(colloquial.test) >= 60
    assert len(offtopic.train) + len(offtopic.test) >= 40
    assert len(offtopic.test) >= 20
    ids = {entry.id for entry in load_entries()}
    assert {item.expected for item in colloquial.train + colloquial.test} <= ids
    train = {_key(item.text) for item in colloquial.train} | {_key(t) for t in offtopic.train}
    test = {_key(item.text) for item in colloquial.test} | {_key(t) for t in offtopic.test}
    assert not train & test


def test_off_topic_training_corpus_is_broad() -> None:
    """What the calibration learns «not our business» from (issue #13, fourth pass): many
    kinds of chatter, some in Latin letters, and no copy of a «not our topic» phrasing (a
    class would catch it, and the model would never see how new chatter looks)."""
    train = load_offtopic().train
    assert len(train) >= 250
    assert len({_key(text) for text in train}) == len(train)
    assert len([t for t in train if not any("а" <= c <= "я" for c in t.lower())]) >= 10
    phrasings = {_key(text) for entry in load_not_our_topic() for text in entry.phrasings}
    assert len([text for text in train if _key(text) in phrasings]) <= 4


def test_held_out_messages_are_not_copies_of_the_entries() -> None:
    known = {_key(text) for e in load_entries() for text in [e.question, *e.phrasings]}
    held_out = [item.text for item in load_colloquial().test] + load_offtopic().test
    assert not [text for text in held_out if _key(text) in known]


def test_held_out_set_has_every_kind_of_hard_message() -> None:
    test = [item.text for item in load_colloquial().test]
    latin = [t for t in test if not any("а" <= c <= "я" for c in t.lower())]
    long = [t for t in test if len(words(t)) >= 20]
    assert len(latin) >= 5
    assert len(long) >= 3


@pytest.mark.parametrize(
    ("path", "earlier"),
    [(HOLDOUT_FILE, ()), (HOLDOUT2_FILE, (HOLDOUT_FILE,))],
    ids=["holdout", "holdout2"],
)
def test_held_out_split_file_is_large_varied_and_unseen(
    path: Path, earlier: tuple[Path, ...]
) -> None:
    """``eval/holdout.yaml`` and ``eval/holdout2.yaml``: each written after the splits before it
    had been tuned against; each must name real entries, cover many of them, and share no
    message with the entries, the train/test splits or an earlier held-out file."""
    holdout = load_holdout(path)
    colloquial, offtopic = load_colloquial(), load_offtopic()
    assert len(holdout.colloquial) >= 60
    assert len(holdout.offtopic) >= 20
    expected = {item.expected for item in holdout.colloquial}
    assert expected <= {entry.id for entry in load_entries()}
    assert len(expected) >= 40
    texts = [item.text for item in holdout.colloquial]
    assert len([t for t in texts if not any("а" <= c <= "я" for c in t.lower())]) >= 5
    assert len([t for t in texts if len(words(t)) >= 20]) >= 3
    seen = {_key(text) for e in load_entries() for text in [e.question, *e.phrasings]}
    seen |= {_key(item.text) for item in colloquial.train + colloquial.test}
    seen |= {_key(text) for text in offtopic.train + offtopic.test}
    for other in map(load_holdout, earlier):
        seen |= {_key(item.text) for item in other.colloquial} | set(map(_key, other.offtopic))
    assert not [text for text in texts + holdout.offtopic if _key(text) in seen]


def test_third_held_out_split_is_broader_still() -> None:
    """``eval/holdout2.yaml`` (issue #13): at least 80 in-KB messages over 60 entries and 25
    off-topic or small-talk ones."""
    holdout = load_holdout(HOLDOUT2_FILE)
    assert len(holdout.colloquial) >= 80
    assert len({item.expected for item in holdout.colloquial}) >= 60
    assert len(holdout.offtopic) >= 25


def test_held_out_understanding_holds_the_bars(kb: KnowledgeBase) -> None:
    outcome = measure(kb, "test")
    assert outcome.right_rate >= HELD_OUT_RIGHT_BAR, outcome.handed_off_cases
    assert outcome.wrong_rate <= HELD_OUT_WRONG_BAR, outcome.wrong_cases
    assert outcome.rate(outcome.right_first, outcome.on_topic) >= HELD_OUT_RIGHT_FIRST_BAR
    assert outcome.off_topic_answered_rate <= HELD_OUT_OFF_TOPIC_BAR, outcome.off_topic_cases


def test_understanding_is_better_than_the_plain_index(kb: KnowledgeBase) -> None:
    """Without lexicon, lemmas, classes and calibration (the index as it was, with its
    threshold of 0.45), the held-out messages fare worse."""
    plain = KnowledgeBase(
        kb.entries,
        config=load_search_config().model_copy(
            update={"lemmatize": False, "handoff_threshold": 0.45}
        ),
        lexicon={},
        not_our_topic=[],
        calibration=Calibration(),
    )
    before, after = measure(plain, "test"), measure(kb, "test")
    assert after.right_first > before.right_first
    assert after.off_topic_answered < before.off_topic_answered


# --- transliteration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [
        ("goryachei", "горячеи"),
        ("tretiy", "третий"),
        ("vyvozyat", "вывозят"),
        ("ploshchadki", "площадки"),
        ("zapisatsya", "записатся"),
        ("elektrichestvo", "электричество"),
        ("MFC", "мфц"),
    ],
)
def test_latin_words_are_written_in_cyrillic(latin: str, cyrillic: str) -> None:
    assert word_to_cyrillic(latin) == cyrillic


def test_cyrillic_text_passes_transliteration_unchanged() -> None:
    text = "Нет воды на ул. Ленина, д. 5!"
    assert to_cyrillic(text) is text
    assert to_cyrillic("нет vody") == "нет воды"


def test_russian_in_latin_letters_finds_its_entry(kb: KnowledgeBase) -> None:
    answer = kb.answer("kak zapisatsya k vrachu")
    assert answer.hit is not None
    assert answer.hit.entry_id == "health-doctor-appointment"


@pytest.mark.parametrize(
    ("text", "russian"),
    [
        ("lift ne rabotaet tretiy den", True),
        ("kak dela", True),
        ("the bus is late again", False),
        ("Salom, suv yoq", False),
        ("12345", False),
    ],
)
def test_translit_is_told_from_english(text: str, russian: bool) -> None:
    assert looks_like_russian(text) is russian


# --- lemmas and the slang lexicon ---------------------------------------------------------


def test_lemmas_join_the_forms_of_a_verb() -> None:
    analyzer = Analyzer([], lemmatize=True)
    assert analyzer.terms("топят") == analyzer.terms("топить")
    assert analyzer.terms("цапнула") == analyzer.terms("цапнуть")


def test_slang_is_replaced_by_its_meaning_in_any_form() -> None:
    analyzer = Analyzer([], load_lexicon(), lemmatize=True)
    assert analyzer.terms("водила") == analyzer.terms("водитель")
    assert analyzer.terms("водила") != analyzer.terms("вода")
    assert analyzer.terms("цапнула") == analyzer.terms("укусить")
    assert analyzer.terms("домофон не пашет") == analyzer.terms("домофон не работает")
    # Chat words mean a stop word: they vanish.
    assert analyzer.terms("чё") == []


@pytest.mark.parametrize("lemmatize", [True, False])
def test_stop_words_are_known_in_any_form_only_with_lemmas(lemmatize: bool) -> None:
    """«всем» is «весь», «хотите» is «хотеть», «доброго утра» a greeting: with lemmas they
    carry no topic; the plain index keeps to the words as written."""
    analyzer = Analyzer([], load_lexicon(), lemmatize=lemmatize)
    for text in ["добрый день всем!", "доброго утра", "хотите ли вы"]:
        assert (analyzer.terms(text) == []) is lemmatize, text


def test_a_day_count_still_carries_the_topic() -> None:
    """«день» is a stop word only as written («добрый день»): «10 дней без воды» keeps it."""
    analyzer = Analyzer([], load_lexicon(), lemmatize=True)
    assert analyzer.terms("доброе утро, 10 дней без воды") == analyzer.terms("10 дней без воды")
    assert len(analyzer.terms("10 дней без воды")) == 3


def test_a_greeting_to_everyone_is_not_answered(kb: KnowledgeBase) -> None:
    answer = kb.answer("всем доброго вечера!")
    assert answer.reason == "no_match"
    assert (answer.handoff, answer.hit) == (True, None)


def test_lexicon_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("- дубак\n- колотун\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="mapping"):
        load_lexicon(path)


def test_slang_finds_the_entry(kb: KnowledgeBase) -> None:
    assert kb.search("водила маршрутки нахамил", k=1)[0].entry_id == "transport-driver-complaint"


# --- not our topic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("какая погода будет в субботу", "weather"),
        ("вы бот или человек", "bot-chatter"),
        ("сочини стишок про осенний листопад", "creative"),
        ("поговори со мной, скучно одной", "small-talk"),
        ("помоги решить задачу по физике", "homework"),
    ],
)
def test_not_our_topic_is_handed_off_with_its_class(
    kb: KnowledgeBase, text: str, kind: str
) -> None:
    answer = kb.answer(text)
    assert (answer.handoff, answer.hit, answer.reason, answer.off_topic) == (
        True,
        None,
        "off_topic",
        kind,
    )


def test_not_our_topic_classes_never_show_as_hits(kb: KnowledgeBase) -> None:
    hits = kb.search("какая погода будет завтра", k=20)
    assert all(hit.entry_id in kb.by_id for hit in hits)
    assert all(not entry.id.startswith("not-our-topic") for entry in kb.entries)


def test_near_empty_greeting_is_not_answered(kb: KnowledgeBase) -> None:
    answer = kb.answer("добрый вечер, есть кто?")
    assert answer.handoff
    assert answer.hit is None


def test_not_our_topic_file_needs_ids_and_phrasings(tmp_path: Path) -> None:
    path = tmp_path / "classes.yaml"
    path.write_text("- id: weather\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="phrasings"):
        load_not_our_topic(path)


# --- the calibrated confidence ------------------------------------------------------------


def test_shipped_calibration_covers_every_feature_and_threshold_is_a_probability() -> None:
    calibration = load_calibration()
    assert set(calibration.weights) == set(FEATURES)
    assert 0.3 <= load_search_config().handoff_threshold <= 0.9


def test_a_clearer_winner_gets_a_higher_confidence() -> None:
    calibration = load_calibration()
    base = {name: 0.5 for name in FEATURES}
    close = calibration.confidence({**base, "margin": 0.01})
    clear = calibration.confidence({**base, "margin": 0.3})
    assert 0 < close < clear < 1


def test_without_weights_the_confidence_is_the_plain_mix() -> None:
    features = {name: 0.0 for name in FEATURES} | {"coverage": 0.6, "similarity": 0.4}
    assert Calibration().confidence(features) == pytest.approx(0.5)


def test_confidence_is_what_the_answer_decision_uses(kb: KnowledgeBase) -> None:
    text = "дубак в квартире, батареи еле живые"
    ranking = kb.rank(text)
    best = ranking.hits[0]
    assert best.confidence == pytest.approx(kb.calibration.confidence(ranking.features), abs=1e-4)
    assert kb.answer(text, threshold=best.confidence + 0.01).reason == "low_confidence"
    assert kb.answer(text, threshold=best.confidence - 0.01).hit == best


# --- odd input ----------------------------------------------------------------------------


def test_a_huge_word_is_not_corrected_as_a_typo(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletions of a 4,000-letter word would take gigabytes: such a word is no typo."""
    import knowledge_base.search as search

    def refuse(word: str, depth: int) -> set[str]:
        if len(word) > search.MAX_TYPO_LENGTH:
            raise AssertionError(f"deletions of a {len(word)}-letter word")
        return {word}

    monkeypatch.setattr(search, "deletions", refuse)
    for text in ["ж" * 4000, "x" * 5000, "прописка" + "ы" * 30]:
        answer = kb.answer(text)
        assert answer.handoff


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f4a9" * 500 + " нет горячей воды",
        "нет\u200b горячей\u200b воды",
        "\u202eнет горячей воды",
        "'" * 3000,
        "пр0писка в kвартире",
        "NET GORYACHEY VODY!!!",
    ],
)
def test_odd_text_gets_an_answer_or_a_hand_off(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    assert answer.handoff or answer.hit is not None
    assert all(0 <= hit.confidence <= 1 for hit in answer.hits)


def test_the_typo_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge_base.search as search

    monkeypatch.setattr(search, "MAX_CACHED_CORRECTIONS", 10)
    kb = KnowledgeBase.load()
    for number in range(25):
        kb.search(f"щщыыжж{'абвгдежзик'[number % 10]}{number}", k=1)
    assert len(kb._corrections) <= 10


# --- the sibling audit --------------------------------------------------------------------


def test_sibling_audit_lists_entries_asked_about_in_the_same_words() -> None:
    """``scripts/kb_siblings.py`` ranks the pairs of entries a message could be confused
    between: a pothole and the damage it did are among them, unrelated entries are not."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "scripts" / "kb_siblings.py"), "--top", "80"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pairs = [line.split()[2:5:2] for line in out.splitlines()[1:]]
    assert len(pairs) == 80
    assert ["road-pothole", "road-pothole-damage"] in pairs
    assert ["animals-bite", "pay-parking"] not in pairs
    assert all(a < b for a, b in pairs)
