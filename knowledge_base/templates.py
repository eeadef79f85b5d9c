"""Template replies: data in ``templates.yaml``, filled with ``$variables``.

``string.Template`` is used on purpose: substitution is a single pass, so a citizen's name such as
``$appeal_number`` or ``{{ 7*7 }}`` is inserted as plain text and never evaluated. A missing
variable is an error naming it; the operator sees the filled text (``preview``) before sending.
"""

from __future__ import annotations

import html
import string
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from knowledge_base.datafile import read_yaml_list
from knowledge_base.readability import ReadabilityReport, check_text

TEMPLATES_FILE = Path(__file__).resolve().parent / "templates.yaml"

#: Variables a template may use, with what an operator sees when one is not filled.
KNOWN_VARIABLES: dict[str, str] = {
    "citizen_name": "имя жителя",
    "appeal_number": "номер обращения",
    "deadline": "срок",
    "address": "адрес",
    "operator_name": "имя оператора",
    "agency_name": "название ведомства",
    "department": "отдел",
    "answer": "ответ из базы знаний",
    "rating_link": "ссылка на оценку",
    "phone": "телефон",
}


class TemplateError(ValueError):
    pass


class MissingVariablesError(TemplateError):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        names = ", ".join(f"${name} ({KNOWN_VARIABLES.get(name, '?')})" for name in missing)
        super().__init__(f"template variables not filled: {names}")


class ReplyTemplate(BaseModel):
    id: str
    title: str
    text: str
    #: Where it is used: public (comments), private (messages, email), any.
    channel: str = "any"

    @property
    def variables(self) -> list[str]:
        return string.Template(self.text).get_identifiers()


class TemplatePreview(BaseModel):
    """What the operator sees before sending: the text, gaps marked, and readability."""

    text: str
    missing: list[str] = Field(default_factory=list)
    ready: bool
    readability: ReadabilityReport


def load_templates(path: Path = TEMPLATES_FILE) -> dict[str, ReplyTemplate]:
    items = read_yaml_list(path, "templates", error=TemplateError)
    templates: dict[str, ReplyTemplate] = {}
    for index, item in enumerate(items, start=1):
        try:
            template = ReplyTemplate.model_validate(item)
        except ValidationError as exc:
            raise TemplateError(f"{path}: template #{index}: {exc}") from exc
        if template.id in templates:
            raise TemplateError(f"{path}: template id {template.id!r} used twice")
        problems = template_problems(template.text)
        if problems:
            raise TemplateError(f"{path}: template {template.id!r}: {'; '.join(problems)}")
        templates[template.id] = template
    return templates


@lru_cache(maxsize=1)
def default_templates() -> dict[str, ReplyTemplate]:
    return load_templates()


def template_problems(text: str) -> list[str]:
    """Broken placeholders: a stray ``$``, an unknown variable, or jinja-like braces."""
    template = string.Template(text)
    problems: list[str] = []
    if not template.is_valid():
        problems.append("a '$' that is not a variable (write '$$' for a dollar sign)")
    for name in template.get_identifiers():
        if name not in KNOWN_VARIABLES:
            known = ", ".join(sorted(KNOWN_VARIABLES))
            problems.append(f"unknown variable ${name} (known: {known})")
    if "{{" in text or "{%" in text:
        problems.append("'{{' or '{%' found: variables are written as $name")
    return problems


def render_template(
    template_id_or_text: str,
    variables: dict[str, Any],
    *,
    escape_html: bool = False,
    templates: dict[str, ReplyTemplate] | None = None,
) -> str:
    """Fill a template (by id from ``templates.yaml``, or a literal text) with ``variables``.

    Raises ``MissingVariablesError`` naming every variable the text needs and was not given.
    """
    text = _template_text(template_id_or_text, templates)
    problems = template_problems(text)
    if problems:
        raise TemplateError("; ".join(problems))
    values = _format_values(variables, escape_html=escape_html)
    needed = string.Template(text).get_identifiers()
    missing = [name for name in needed if not values.get(name)]
    if missing:
        raise MissingVariablesError(missing)
    return string.Template(text).substitute(values)


def preview(
    template_id_or_text: str,
    variables: dict[str, Any],
    *,
    templates: dict[str, ReplyTemplate] | None = None,
) -> TemplatePreview:
    """The filled text for the operator; missing variables are marked, never an exception."""
    text = _template_text(template_id_or_text, templates)
    values = _format_values(variables, escape_html=False)
    needed = string.Template(text).get_identifiers()
    missing = [name for name in needed if not values.get(name)]
    for name in missing:
        values[name] = f"[не заполнено: {KNOWN_VARIABLES.get(name, name)}]"
    filled = string.Template(text).safe_substitute(values)
    ready = not missing and not template_problems(text)
    return TemplatePreview(
        text=filled, missing=missing, ready=ready, readability=check_text(filled)
    )


def _template_text(template_id_or_text: str, templates: dict[str, ReplyTemplate] | None) -> str:
    known = default_templates() if templates is None else templates
    if template_id_or_text in known:
        return known[template_id_or_text].text
    return template_id_or_text


def _format_values(variables: dict[str, Any], *, escape_html: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in variables.items():
        if value is None:
            continue
        text = _format_value(value).strip()
        values[name] = html.escape(text) if escape_html else text
    return values


def _format_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)
