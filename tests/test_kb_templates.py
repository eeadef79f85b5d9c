"""Template replies are filled safely, and the operator sees the text before sending."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge_base.templates import (
    MissingVariablesError,
    TemplateError,
    load_templates,
    preview,
    render_template,
)

ACK_VALUES = {"citizen_name": "Анна", "appeal_number": "2026-000123", "deadline": "12.03.2026"}


def test_shipped_templates_cover_the_conversation_steps() -> None:
    templates = load_templates()
    assert {
        "greeting",
        "acknowledgement",
        "move_to_private",
        "handoff_to_operator",
        "closing",
    } <= set(templates)


def test_acknowledgement_names_the_appeal_number_and_deadline() -> None:
    text = render_template("acknowledgement", ACK_VALUES)
    assert text.startswith("Анна, мы получили ваше обращение.")
    assert "2026-000123" in text
    assert "до 12.03.2026" in text


def test_missing_variable_is_a_clear_error_naming_it() -> None:
    with pytest.raises(MissingVariablesError) as error:
        render_template("acknowledgement", {"citizen_name": "Анна"})
    assert error.value.missing == ["appeal_number", "deadline"]
    assert "$deadline" in str(error.value)


def test_blank_value_counts_as_missing() -> None:
    with pytest.raises(MissingVariablesError):
        render_template("greeting", {"citizen_name": "  ", "operator_name": "Мария"})


def test_citizen_value_cannot_inject_template_syntax() -> None:
    values = dict(ACK_VALUES, citizen_name="$appeal_number {{ 7*7 }} ${deadline}")
    text = render_template("acknowledgement", values)
    assert text.startswith("$appeal_number {{ 7*7 }} ${deadline}, мы получили")


def test_html_rendering_escapes_values() -> None:
    values = dict(ACK_VALUES, citizen_name="<script>alert(1)</script>")
    text = render_template("acknowledgement", values, escape_html=True)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text


def test_dates_are_written_the_russian_way() -> None:
    text = render_template("Ответим до $deadline.", {"deadline": date(2026, 3, 12)})
    assert text == "Ответим до 12.03.2026."
    text = render_template("Ответим до $deadline.", {"deadline": datetime(2026, 3, 12, 18, 0)})
    assert text == "Ответим до 12.03.2026 18:00."


def test_literal_text_with_unknown_variable_is_rejected() -> None:
    with pytest.raises(TemplateError, match="unknown variable \\$passport"):
        render_template("Ваш паспорт: $passport", {"passport": "1234"})


def test_stray_dollar_and_jinja_braces_are_rejected() -> None:
    with pytest.raises(TemplateError, match="not a variable"):
        render_template("Стоит 100 $ в месяц", {})
    with pytest.raises(TemplateError, match="\\$name"):
        render_template("Здравствуйте, {{ citizen_name }}", {})


def test_preview_marks_missing_values_instead_of_failing() -> None:
    shown = preview("acknowledgement", {"citizen_name": "Анна"})
    assert not shown.ready
    assert shown.missing == ["appeal_number", "deadline"]
    assert "[не заполнено: номер обращения]" in shown.text
    assert shown.readability.words > 0


def test_preview_of_a_complete_reply_is_ready_and_readable() -> None:
    shown = preview("acknowledgement", ACK_VALUES)
    assert shown.ready
    assert shown.missing == []
    assert shown.readability.ok


def test_broken_templates_file_names_the_template(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("- {id: bad, title: Плохой, text: 'Привет, $nme'}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="template 'bad': unknown variable \\$nme"):
        load_templates(path)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60).filter(lambda s: s.strip() == s and s))
def test_any_citizen_name_is_inserted_verbatim(name: str) -> None:
    text = render_template("greeting", {"citizen_name": name, "operator_name": "Мария"})
    assert text.startswith(f"Здравствуйте, {name}! Меня зовут Мария")
