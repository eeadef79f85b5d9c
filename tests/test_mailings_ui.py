"""Consent and mailings in the operator UI over HTTP, and the one-click unsubscribe link of
mailings' letters (RFC 8058), on both databases."""

from __future__ import annotations

from sqlmodel import select

from bot.email.send import SmtpConfig, compose
from core.clock import FrozenClock
from inbox import mailings
from inbox.mailings import Unsubscribe
from inbox.models import Application, AuditEvent, Consent, Mailing, Message
from inbox.runtime import Runtime
from tests.helpers.applications_harness import make_application
from tests.helpers.applications_ui import client, login, rt  # noqa: F401
from tests.helpers.mailings import RULES, _subscribe


def test_an_operator_records_and_withdraws_a_consent_on_the_citizens_request(
    rt: Runtime,
    client,
) -> None:
    _, _, conversation_id = make_application(rt)
    _, _, other_conversation = make_application(rt, thread_key="tg:42", citizen_name="Борис")
    csrf = login(client, "anna", "operator-demo")
    page = client.get(f"/ui/c/{conversation_id}")
    assert "Согласий нет" in page.text
    done = client.post(
        f"/ui/conversations/{conversation_id}/consent",
        data={"csrf_token": csrf, "scope": "situation:housing"},
    )
    assert done.status_code == 200 and "Согласие записано." in done.text
    assert "(все услуги ситуации)" in done.text and "оператор anna" in done.text
    for scope in ("situation:nope", "weird:housing", "", "service:" + "x" * 60):
        bad = client.post(
            f"/ui/conversations/{conversation_id}/consent",
            data={"csrf_token": csrf, "scope": scope},
        )
        assert bad.status_code == 422, scope
    no_csrf = client.post(
        f"/ui/conversations/{conversation_id}/consent", data={"scope": "service:outages"}
    )
    assert no_csrf.status_code == 403
    with rt.factory() as session:
        consent = session.exec(select(Consent)).one()
        assert consent.given_via == "operator" and consent.given_by == "anna"
        assert consent.wording == RULES.consent_text("situation", "housing")
    # Someone else's conversation cannot withdraw this citizen's consent.
    foreign = client.post(
        f"/ui/conversations/{other_conversation}/consent/{consent.id}/withdraw",
        data={"csrf_token": csrf},
    )
    assert foreign.status_code == 404
    for odd in ("999999999999", "-1", "0"):
        assert client.post(
            f"/ui/conversations/{conversation_id}/consent/{odd}/withdraw", data={"csrf_token": csrf}
        ).status_code in (404, 422)
    gone = client.post(
        f"/ui/conversations/{conversation_id}/consent/{consent.id}/withdraw",
        data={"csrf_token": csrf},
    )
    assert gone.status_code == 200 and "отозвано" in gone.text
    assert client.get("/ui/mailings").status_code == 403  # supervisors make mailings
    with rt.factory() as session:
        kinds = session.exec(select(AuditEvent.kind)).all()
        assert kinds.count("consent_given") == 1 and kinds.count("consent_withdrawn") == 1


def test_a_supervisor_previews_schedules_and_follows_a_mailing(
    rt: Runtime,
    client,
    clock: FrozenClock,
) -> None:
    _, _, conversation_id = make_application(rt)
    _subscribe(rt, conversation_id)
    csrf = login(client, "svetlana", "supervisor-demo")
    text = "Завтра с 9 до 17 часов на улице Ленина не будет горячей воды."
    form = {"csrf_token": csrf, "topic": "outages", "area": "central", "text": text, "at": ""}
    preview = client.post("/ui/mailings", data={**form, "action": "preview"})
    assert preview.status_code == 200
    assert "Так увидит подписчик" in preview.text and "Читается легко" in preview.text
    assert '<strong class="audience">1</strong>' in preview.text
    assert "Чтобы отписаться, напишите «стоп»" in preview.text
    for bad in ({"topic": "nope"}, {"text": " "}, {"area": "moon"}, {"at": "вчера"},
                {"at": "2020-01-01T10:00"}, {"text": "a\u202eb"}):  # fmt: skip
        refused = client.post("/ui/mailings", data={**form, **bad, "action": "create"})
        assert refused.status_code == 422, bad
    with rt.factory() as session:
        assert session.exec(select(Mailing)).all() == []
    made = client.post("/ui/mailings", data={**form, "action": "create"})
    assert made.status_code == 200 and "Рассылка 1 запланирована." in made.text
    assert mailings.run_round(rt) == 1
    page = client.get("/ui/mailings/1")
    assert 'id="mailing-recipients">1<' in page.text and 'id="mailing-queued">1<' in page.text
    assert client.get("/ui/mailings/99999").status_code == 404
    assert client.get("/ui/mailings/99999999999999999999").status_code in (404, 422)
    listed = client.get("/ui/mailings")
    assert "отправлена" in listed.text


def test_a_letter_carries_one_click_unsubscribe_and_the_link_works_once_and_only_signed(
    rt: Runtime,
    client,
) -> None:
    _, _, conversation_id = make_application(
        rt, channel="email", thread_key="email:anna@example.org",
        reply_target={"to": "anna@example.org", "subject": "Вода"},
    )  # fmt: skip
    subscription_id = _subscribe(rt, conversation_id)
    with rt.factory() as session:
        mailings.create(
            session, RULES, mailings.MailingDraft("outages", None, "Нет воды.", None),
            rt.clock.now(), by="boss",
        )  # fmt: skip
        session.commit()
    links = Unsubscribe(rt.settings.secret_key, "https://otklik.example")
    assert mailings.send_due(rt.factory, RULES, rt.clock.now(), links) == 1
    with rt.factory() as session:
        message = session.exec(select(Message).where(Message.channel == "email")).one()
    config = SmtpConfig("localhost", 25, "", "", False, "ДГХ <city@agency.example>")
    letter = compose(message, config, None, rt.clock.now())
    url = links.url(subscription_id)
    assert letter["List-Unsubscribe"] == f"<{url}>"
    assert letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.text
    path = url.removeprefix("https://otklik.example")
    token = path.rsplit("/", 1)[1]
    assert client.get(path).status_code == 200  # a page with a button: scanners open links
    for forged in (token[:-2] + "xx", "1", "x" * 500, mailings.unsubscribe_token("other" * 8, 1)):
        assert client.post(f"/unsubscribe/{forged}").status_code == 404
    one_click = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and "Вы отписались" in one_click.text
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with rt.factory() as session:
        consent = session.exec(select(Consent)).one()
        assert consent.withdrawn_via == "email"
        assert session.exec(select(Application)).one()  # the citizen's application untouched
