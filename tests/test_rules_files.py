"""Rules, profile and calendar are data: validated on load, errors name the file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.config import RULES_DIR
from rules.engine import ResponseRules
from rules.errors import RulesFileError
from rules.moderation import Moderation
from rules.profile import load_profile


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    for name in ("response.yaml", "calendar.yaml", "moderation.yaml"):
        shutil.copy(RULES_DIR / name, tmp_path / name)
    return tmp_path


def test_shipped_rules_follow_the_standard() -> None:
    rules = ResponseRules.load(RULES_DIR)
    hours = {r.id: r.deadline.hours for r in rules.ruleset.rules if r.deadline}
    assert hours["mention"] == 4
    assert hours["appeal"] == 2
    assert hours["comment-on-official-post"] == 2


def test_example_profile_has_the_demo_identities() -> None:
    profile = load_profile(RULES_DIR / "agency.example.yaml")
    assert profile.names == ["Департамент городского хозяйства", "ДГХ"]
    assert profile.vk.group_id == 200000001 and profile.vk.screen_name == "dgh_city"
    assert profile.telegram.bot_username == "dgh_city_bot"
    assert profile.telegram.channel_id == -1002000000001
    assert profile.telegram.channel_username == "dgh_city"
    assert profile.telegram.discussion_group_id == -1002000000002
    assert profile.email.addresses == ["priem@dgh.example"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("rules:\n  - id: x\n    when: {colour: red}\n    kind: appeal\n    deadline: {hours: 2}\n",
         "unknown condition 'colour'"),
        ("rules:\n  - id: y\n    when: {place: moon}\n    kind: appeal\n    deadline: {hours: 2}\n",
         "'moon' is not one of"),
        ("rules:\n  - id: z\n    kind: appeal\n", "needs a deadline"),
        ("rules:\n  - id: w\n    kind: mention\n    deadline: {hours: -1}\n", "greater than 0"),
        ("rules: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_response_rules_are_rejected_with_a_clear_message(
    rules_dir: Path, bad: str, message: str
) -> None:
    (rules_dir / "response.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(RulesFileError) as info:
        ResponseRules.load(rules_dir)
    assert str(rules_dir / "response.yaml") in str(info.value)
    assert message in str(info.value)


def test_deadlines_are_data(rules_dir: Path) -> None:
    text = (rules_dir / "response.yaml").read_text(encoding="utf-8")
    (rules_dir / "response.yaml").write_text(
        text.replace(
            "kind: mention\n    deadline: {hours: 4}", "kind: mention\n    deadline: {hours: 3}"
        ),
        encoding="utf-8",
    )
    rules = ResponseRules.load(rules_dir)
    assert {r.id: r.deadline for r in rules.ruleset.rules}["mention"].hours == 3  # type: ignore[union-attr]


def test_bad_moderation_pattern_names_the_rule(rules_dir: Path) -> None:
    (rules_dir / "moderation.yaml").write_text(
        "rules:\n  - {id: broken, action: hide, reason: x, patterns: ['(unclosed']}\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesFileError, match="not a valid regex"):
        Moderation.load(rules_dir)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("звоните 8 916 123 45 67", "personal-data-phone"),
        ("паспорт 4512 345678", "personal-data-passport"),
        ("СНИЛС 123-456-789 01", "personal-data-snils"),
        ("Заработок от 5000 в день, пишите", "spam"),
        ("вы тут все идиоты", "insult"),
    ],
)
def test_moderation_rules_catch(text: str, rule: str) -> None:
    verdicts = Moderation.load(RULES_DIR).check(text)
    assert rule in [v.rule_id for v in verdicts]


def test_moderation_leaves_ordinary_comments_alone() -> None:
    text = "Спасибо, что быстро починили фонарь у дома 12 на Садовой!"
    assert Moderation.load(RULES_DIR).check(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Жалоба в Департамент городского хозяйства", True),
        ("спасибо департаменту городского хозяйства", True),
        ("С Департаментом городского хозяйства не дозвониться", True),
        ("ДГХ опять молчит", True),
        ("пишите на vk.com/dgh_city", True),
        ("департамент образования", False),
        ("ДГХО — другая организация", False),
    ],
)
def test_agency_names_are_found_in_any_case_form(text: str, found: bool) -> None:
    profile = load_profile(RULES_DIR / "agency.example.yaml")
    assert bool(profile.find_mentions(text)) is found


def test_every_rules_file_reports_errors_one_way(rules_dir: Path) -> None:
    """Response rules, moderation, calendar, profile and catalog are read by one loader
    (rules/datafile.py): an error is ``file: field.path (id 'x'): message``."""
    from rules.catalog import load_catalog
    from rules.working_calendar import load_calendar

    response = rules_dir / "response.yaml"
    response.write_text(
        "rules:\n  - id: w\n    kind: mention\n    deadline: {hours: -1}\n", encoding="utf-8"
    )
    with pytest.raises(RulesFileError) as info:
        ResponseRules.load(rules_dir)
    assert str(info.value).startswith(f"{response}: rules.0.deadline.hours (id 'w'): ")

    moderation = rules_dir / "moderation.yaml"
    moderation.write_text(
        "rules:\n  - {id: ok, action: hide, reason: x, words: [a]}\n"
        "  - {id: broken, action: hide, reason: x, patterns: ['(unclosed']}\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesFileError) as info:
        Moderation.load(rules_dir)
    assert str(info.value).startswith(f"{moderation}: rules.1.patterns (id 'broken'): ")
    moderation.write_text("rules: {not: a list}\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"moderation\.yaml: rules: "):
        Moderation.load(rules_dir)

    calendar = rules_dir / "calendar.yaml"
    calendar.write_text("hours: {start: '18:00', end: '09:00'}\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"calendar\.yaml: .*start before end"):
        load_calendar(calendar)

    profile = rules_dir / "agency.yaml"
    profile.write_text("names: [\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"agency\.yaml: not valid YAML"):
        load_profile(profile)
    with pytest.raises(RulesFileError, match=r"missing\.yaml: cannot read"):
        load_profile(rules_dir / "missing.yaml")

    catalog = rules_dir / "catalog.yaml"
    catalog.write_text(
        "services:\n  - {id: a, title: A}\n  - {id: Bad Id, title: B}\n", encoding="utf-8"
    )
    with pytest.raises(RulesFileError, match=r"catalog\.yaml: services\.1\.id \(id 'Bad Id'\): "):
        load_catalog(catalog)
