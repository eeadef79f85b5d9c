"""«Почему нельзя сейчас» and «когда будет» of KB entries in the operator UI.

The standard asks that an answer to a need that cannot be met says why and when. The entries
carry it in ``cannot_because`` / ``available_when``; operators see it in the suggestions and
administrators edit it with the readability verdict, like the answers.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from bot.normalize import normalize
from core.events import Channel
from inbox.kb_workflow import latest_published, open_revision
from inbox.runtime import Runtime
from knowledge_base.entries import KBEntry, load_entries
from knowledge_base.store import SEED_DIR
from otklik.demo import _tg_private
from tests.helpers.kb import publish_as_supervisor
from tests.helpers.ui import client, login, rt  # noqa: F401

HEAVY = (
    "В целях обеспечения надлежащего функционирования систем осуществление работ будет "
    "произведено в установленный срок после получения соответствующего разрешения."
)


def private_appeal(rt: Runtime, text: str, update_id: int = 991001) -> int:
    raw = json.dumps(_tg_private(update_id, 391999101, "Гость", text, rt.clock.now()))
    _, processed = rt.inbox.ingest(normalize(Channel.telegram, raw.encode(), rt.profile))
    assert processed is not None and processed.conversation_id is not None
    return processed.conversation_id


def shipped(entry_id: str) -> KBEntry:
    return next(e for e in load_entries(SEED_DIR) if e.id == entry_id)


def live(rt: Runtime, entry_id: str) -> KBEntry:
    """The entry as the bot answers with it now (published overrides over the files)."""
    return next(e for e in rt.kb.get().entries if e.id == entry_id)


def test_suggestion_shows_why_not_now_and_when_with_a_button_that_inserts_them(
    client: TestClient, rt: Runtime
) -> None:
    entry = shipped("outage-heating-start")
    assert entry.cannot_because and entry.available_when
    cid = private_appeal(rt, "Когда включат отопление? Дома холодно")
    login(client, "anna", "operator-demo")
    page = html.unescape(client.get(f"/ui/c/{cid}").text)
    hint = page[page.index("Подсказки из базы знаний") :]
    assert "Почему нельзя сейчас" in hint and entry.cannot_because in hint
    assert "Когда будет" in hint and entry.available_when in hint
    fill = re.search(r'data-fill="([^"]+)">Вставить с «почему и когда»', page)
    assert fill is not None
    assert fill.group(1) == f"{entry.full_answer} {entry.cannot_because} {entry.available_when}"


def test_an_entry_that_can_be_met_shows_no_why_block(client: TestClient, rt: Runtime) -> None:
    assert not shipped("docs-registration").cannot_because
    cid = private_appeal(rt, "как оформить прописку в новой квартире")
    login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{cid}").text
    hint = page[page.index("Подсказки из базы знаний") : page.index("<h2>Шаблоны")]
    first = hint[: hint.index("Вставить в ответ")]
    assert "Почему нельзя сейчас" not in first


def test_admin_writes_why_and_when_and_the_next_suggestion_shows_them(
    client: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    entry = shipped("docs-mfc-hours")
    token = login(client, "admin", "admin-demo")
    page = client.get("/ui/admin/kb/docs-mfc-hours").text
    assert "Почему нельзя сейчас" in page and "Когда будет" in page
    form = {
        "csrf_token": token,
        "question": entry.question,
        "short_answer": entry.short_answer,
        "full_answer": entry.full_answer,
        "why_when": "true",
        "cannot_because": "  В праздники часть отделений закрыта.  ",
        "available_when": "Обычный режим вернётся на следующий рабочий день.",
    }
    saved = client.post("/ui/admin/kb/docs-mfc-hours", data=form)
    assert "Черновик сохранён, ответ изменится после проверки" in saved.text
    assert not live(rt, "docs-mfc-hours").cannot_because  # a draft is not answered
    publish_as_supervisor(client.app, rt, "docs-mfc-hours")
    kept = live(rt, "docs-mfc-hours")
    assert kept.cannot_because == "В праздники часть отделений закрыта."
    assert kept.available_when == "Обычный режим вернётся на следующий рабочий день."
    listing = client.get("/ui/admin/kb").text
    row = listing[listing.index("/ui/admin/kb/docs-mfc-hours") :].split("</tr>")[0]
    assert "почему и когда" in row and "Получение документов" in row

    cid = private_appeal(rt, "Во сколько открывается МФЦ, работает в праздники?")
    login(client, "anna", "operator-demo")
    hint = client.get(f"/ui/c/{cid}").text
    assert "В праздники часть отделений закрыта." in hint

    token = login(client, "admin", "admin-demo")
    cleared = client.post(
        "/ui/admin/kb/docs-mfc-hours",
        data={**form, "csrf_token": token, "cannot_because": " ", "available_when": ""},
    )
    assert "Черновик сохранён" in cleared.text, re.findall(
        r"class=\"flash[^>]*>([^<]*)", cleared.text
    )
    publish_as_supervisor(client.app, rt, "docs-mfc-hours")
    kept = live(rt, "docs-mfc-hours")
    assert kept.cannot_because is None and kept.available_when is None
    with rt.factory() as session:  # the cleared fields are cleared in the published version
        newest = latest_published(session, "docs-mfc-hours")
    assert newest is not None and newest.version == 2
    assert newest.data.get("cannot_because") is None and newest.data.get("available_when") is None
    assert not (tmp_path / "knowledge_base").exists()  # no entry file is written


def test_when_without_why_is_refused_and_nothing_is_written(
    client: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    entry = shipped("docs-mfc-hours")
    token = login(client, "admin", "admin-demo")
    refused = client.post(
        "/ui/admin/kb/docs-mfc-hours",
        data={
            "csrf_token": token,
            "question": entry.question,
            "short_answer": entry.short_answer,
            "full_answer": entry.full_answer,
            "why_when": "true",
            "cannot_because": "",
            "available_when": "Завтра.",
        },
    )
    assert "Не сохранено: сначала напишите, почему нельзя сейчас" in refused.text
    with rt.factory() as session:
        assert open_revision(session, "docs-mfc-hours") is None


def test_a_form_without_the_why_fields_keeps_them(
    client: TestClient, rt: Runtime, tmp_path: Path
) -> None:
    entry = shipped("outage-heating-start")
    token = login(client, "admin", "admin-demo")
    client.post(
        "/ui/admin/kb/outage-heating-start",
        data={"csrf_token": token, "question": "Когда дадут отопление осенью?",
              "short_answer": entry.short_answer, "full_answer": entry.full_answer},
    )  # fmt: skip
    with rt.factory() as session:
        draft = open_revision(session, "outage-heating-start")
    assert draft is not None and draft.data["question"] == "Когда дадут отопление осенью?"
    kept = KBEntry.model_validate(draft.data)
    assert (kept.cannot_because, kept.available_when) == (
        entry.cannot_because,
        entry.available_when,
    )


def test_live_verdict_of_a_kb_form_field_checks_that_field_not_the_whole_form(
    client: TestClient,
) -> None:
    token = login(client, "admin", "admin-demo")
    # htmx sends the whole form; «field» says which text the verdict is about.
    form = {"csrf_token": token, "short_answer": "Воду дадут завтра.", "cannot_because": HEAVY}
    heavy = client.post("/ui/readability", data={**form, "field": "cannot_because"}).text
    plain = client.post("/ui/readability", data={**form, "field": "short_answer"}).text
    assert "Текст сложный для чтения" in heavy
    assert "Читается легко" in plain
    # The reply box sends «text» and no field.
    assert (
        "Читается легко"
        in client.post(
            "/ui/readability", data={"csrf_token": token, "text": "Воду дадут завтра."}
        ).text
    )
