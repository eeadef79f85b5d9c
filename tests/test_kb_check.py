"""``otklik kb check``, ``otklik kb search`` and ``otklik text check`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from knowledge_base.validate import check_knowledge_base
from otklik.cli import app

runner = CliRunner()

GOOD_ENTRY = """
- id: test-water
  topic: ЖКХ
  life_situation: Проблемы в доме и квартире
  question: Когда дадут воду?
  phrasings: [нет воды, воду отключили, когда включат воду]
  short_answer: Воду дадут завтра. Напишите нам в личные сообщения адрес.
  full_answer: Воду дадут завтра утром. Если воды нет, напишите нам.
  department: Отдел ЖКХ
"""

HEAVY_ANSWER = (
    "В целях обеспечения надлежащего функционирования систем водоснабжения осуществление "
    "работ по восстановлению водоснабжения будет произведено в установленный срок."
)


def write_entries(directory: Path, text: str) -> Path:
    directory.mkdir()
    (directory / "water.yaml").write_text(text, encoding="utf-8")
    return directory


def test_shipped_knowledge_base_passes_its_own_check() -> None:
    result = check_knowledge_base()
    assert result.ok, "\n".join(map(str, result.problems))
    assert result.entries >= 80
    assert result.templates >= 5


def test_kb_check_command_succeeds_on_shipped_knowledge_base() -> None:
    result = runner.invoke(app, ["kb", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")


def test_hard_to_read_answer_fails_naming_file_entry_and_field(tmp_path: Path) -> None:
    entries = write_entries(
        tmp_path / "entries",
        GOOD_ENTRY.replace("Воду дадут завтра утром. Если воды нет, напишите нам.", HEAVY_ANSWER),
    )
    result = runner.invoke(app, ["kb", "check", "--entries", str(entries)])
    assert result.exit_code == 1
    assert "water.yaml: test-water: full_answer: Текст сложный" in result.output
    assert "Много канцелярита" in result.output


def test_missing_field_fails_naming_the_entry(tmp_path: Path) -> None:
    entries = write_entries(tmp_path / "entries", GOOD_ENTRY.replace("  department: Отдел ЖКХ", ""))
    result = runner.invoke(app, ["kb", "check", "--entries", str(entries)])
    assert result.exit_code == 1
    assert "entry test-water" in result.output
    assert "department" in result.output


def test_broken_placeholder_in_answer_is_reported(tmp_path: Path) -> None:
    entries = write_entries(
        tmp_path / "entries",
        GOOD_ENTRY.replace("Воду дадут завтра утром.", "Воду дадут $when."),
    )
    result = check_knowledge_base(entries, heldout_file=None)
    assert [str(p) for p in result.problems] == [
        "water.yaml: test-water: full_answer: unknown variable $when (known: address, agency_name, "
        "answer, appeal_number, citizen_name, deadline, department, operator_name, phone, "
        "rating_link)"
    ]


def test_topic_life_situation_and_department_must_be_in_the_registry(tmp_path: Path) -> None:
    entries = write_entries(
        tmp_path / "entries",
        GOOD_ENTRY.replace("life_situation: Проблемы в доме и квартире", "life_situation: Ремонт"),
    )
    problems = [str(p) for p in check_knowledge_base(entries, heldout_file=None).problems]
    assert problems == [
        "water.yaml: test-water: life_situation 'Ремонт' is not in registry.yaml; add it there"
    ]


def test_public_answer_must_offer_private_messages(tmp_path: Path) -> None:
    entries = write_entries(
        tmp_path / "entries", GOOD_ENTRY.replace(" Напишите нам в личные сообщения адрес.", "")
    )
    problems = check_knowledge_base(entries, heldout_file=None).problems
    assert any("short_answer: offer to continue in private" in str(p) for p in problems)


def test_unreadable_template_is_reported(tmp_path: Path) -> None:
    entries = write_entries(tmp_path / "entries", GOOD_ENTRY)
    templates = tmp_path / "templates.yaml"
    templates.write_text(
        f"- {{id: heavy, title: Тяжёлый, text: '$citizen_name. {HEAVY_ANSWER}'}}\n",
        encoding="utf-8",
    )
    problems = check_knowledge_base(entries, templates_file=templates, heldout_file=None).problems
    assert problems and all(str(p).startswith("templates.yaml: heavy:") for p in problems)


def test_kb_search_prints_json_with_hits_and_handoff_decision() -> None:
    result = runner.invoke(app, ["kb", "search", "как оформить прописку", "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["handoff"] is False
    assert data["answer"] == "docs-registration"
    assert len(data["hits"]) == 3
    assert {"entry_id", "score", "confidence", "short_answer"} <= set(data["hits"][0])


def test_kb_search_says_when_it_hands_off() -> None:
    result = runner.invoke(app, ["kb", "search", "рецепт борща"])
    assert result.exit_code == 0
    assert "hand off to an operator (low_confidence" in result.output


def test_text_check_json_from_stdin_reports_formulas_and_issues() -> None:
    result = runner.invoke(app, ["text", "check", "-", "--json"], input=HEAVY_ANSWER)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["grade_level"] > 10
    for key in ("flesch_reading_ease", "flesch_kincaid_grade", "smog", "coleman_liau"):
        assert isinstance(report[key], float)
    issue = report["issues"][0]
    assert HEAVY_ANSWER[issue["start"] : issue["end"]] == issue["fragment"] == "В целях обеспечения"
    assert issue["kind"] == "stock_phrase"
    assert issue["suggestion"] == "чтобы"


def test_text_check_of_plain_file_passes(tmp_path: Path) -> None:
    path = tmp_path / "answer.txt"
    path.write_text("Воду дадут завтра. Если воды нет, напишите нам.", encoding="utf-8")
    result = runner.invoke(app, ["text", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")


def test_text_check_uses_a_custom_bar(tmp_path: Path) -> None:
    path = tmp_path / "answer.txt"
    path.write_text("Воду дадут завтра. Если воды нет, напишите нам.", encoding="utf-8")
    bar = tmp_path / "bar.yaml"
    bar.write_text("max_sentence_words: 3\n", encoding="utf-8")
    result = runner.invoke(app, ["text", "check", str(path), "--bar", str(bar)])
    assert result.exit_code == 1
    assert "НЕ ПРОХОДИТ" in result.output
    assert "[long_sentence]" in result.output


def test_text_check_of_missing_file_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["text", "check", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_kb_template_lists_templates() -> None:
    result = runner.invoke(app, ["kb", "template"])
    assert result.exit_code == 0
    assert "acknowledgement  (private)  Обращение принято" in result.output


def test_kb_template_shows_the_filled_reply_and_what_is_missing() -> None:
    args = ["kb", "template", "acknowledgement", "--var", "citizen_name=Анна", "--json"]
    result = runner.invoke(app, [*args, "--var", "appeal_number=2026-000123"])
    assert result.exit_code == 1
    shown = json.loads(result.output)
    assert shown["missing"] == ["deadline"]
    assert shown["text"].startswith("Анна, мы получили ваше обращение. Его номер 2026-000123.")


def test_kb_template_with_every_value_is_ready() -> None:
    values = ["citizen_name=Анна", "appeal_number=2026-000123", "deadline=12.03.2026"]
    args = ["kb", "template", "acknowledgement"]
    for value in values:
        args += ["--var", value]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Ответим до 12.03.2026." in result.output


def test_hard_to_read_why_and_when_fail_naming_the_field(tmp_path: Path) -> None:
    entries = write_entries(
        tmp_path / "entries",
        GOOD_ENTRY + f"  cannot_because: {HEAVY_ANSWER}\n  available_when: {HEAVY_ANSWER}\n",
    )
    problems = [str(p) for p in check_knowledge_base(entries, heldout_file=None).problems]
    assert any(
        p.startswith("water.yaml: test-water: cannot_because: Текст сложный") for p in problems
    )
    assert any(
        p.startswith("water.yaml: test-water: available_when: Текст сложный") for p in problems
    )


def test_when_without_why_is_reported(tmp_path: Path) -> None:
    entries = write_entries(tmp_path / "entries", GOOD_ENTRY + "  available_when: Завтра.\n")
    problems = [str(p) for p in check_knowledge_base(entries, heldout_file=None).problems]
    assert problems == [
        "water.yaml: test-water: available_when without cannot_because: say why first"
    ]


def test_short_answer_needs_a_sentence_the_phone_robot_can_say(tmp_path: Path) -> None:
    only_invitation = "Напишите нам в личные сообщения адрес, и мы назовём точную дату."
    entries = write_entries(
        tmp_path / "entries",
        GOOD_ENTRY.replace(
            "Воду дадут завтра. Напишите нам в личные сообщения адрес.", only_invitation
        ),
    )
    problems = [str(p) for p in check_knowledge_base(entries, heldout_file=None).problems]
    assert problems == [
        "water.yaml: test-water: short_answer: give the answer in a sentence of its own, without "
        "«личные»: the phone robot leaves out sentences about private messages"
    ]
