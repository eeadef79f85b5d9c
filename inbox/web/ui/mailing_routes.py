"""Mailings in the operator UI, consent in the conversation view, one-click unsubscribe.

Supervisors make a mailing on ``/ui/mailings``: topic, district, text (with the readability
check of ``knowledge_base``), a preview of what a subscriber gets and how many subscribers
it would reach now, and when to send it; the page of a mailing shows its figures
(``inbox.mailings.figures``). Operators record a consent, or withdraw one, on the citizen's
request in the conversation view. ``/unsubscribe/<token>`` is the signed one-click link of
mailings' letters (RFC 8058: a POST with ``List-Unsubscribe=One-Click`` needs no login and
no page; a GET shows a button, since mail scanners open links).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select

from inbox import consent, mailings
from inbox.models import Consent, Conversation, Mailing, Subscription
from inbox.web.deps import RuntimeDep
from inbox.web.ui.resources import readability_bar
from inbox.web.ui.security import OperatorDep, SupervisorDep, verify_csrf
from inbox.web.ui.templating import flash, render
from knowledge_base.readability import check_text
from rules.proactive import ProactiveRules, proactive_rules

router = APIRouter(dependencies=[Depends(verify_csrf)])
public_router = APIRouter()


def _when(value: str, zone: ZoneInfo) -> datetime | None:
    """``2026-12-01T09:00`` from a datetime-local field, in the agency's time zone."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip()[:40])
    except ValueError:
        raise mailings.MailingError("Время отправки: укажите дату и время.") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@router.get("/mailings")
def mailing_list(request: Request, rt: RuntimeDep, me: SupervisorDep) -> Response:
    return _page(request, rt, me)


def _page(
    request: Request, rt: RuntimeDep, me: SupervisorDep, status_code: int = 200, **form: Any
) -> Response:
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        rows = session.exec(select(Mailing).order_by(col(Mailing.id).desc()).limit(50)).all()
        items = [(m, mailings.figures(session, m.id or 0)) for m in rows]
    return render(
        request, "mailings.html", me, status_code=status_code, section="mailings", items=items,
        topics=rules.topics, areas=rules.areas, STATUSES=mailings.STATUSES, form=form,
        topic_titles={t.id: t.title for t in rules.topics},
        area_titles={a.id: a.title for a in rules.areas},
    )  # fmt: skip


@router.post("/mailings")
def mailing_create(
    request: Request,
    rt: RuntimeDep,
    me: SupervisorDep,
    topic: Annotated[str, Form(max_length=30)] = "",
    area: Annotated[str, Form(max_length=30)] = "",
    text: Annotated[str, Form(max_length=10000)] = "",
    at: Annotated[str, Form(max_length=40)] = "",
    action: Annotated[str, Form(max_length=20)] = "preview",
) -> Response:
    """«Проверить» shows the readability, the preview and the audience; «Запланировать»
    creates the mailing (the worker sends it at its time)."""
    rules = proactive_rules(rt.settings.rules_dir)
    zone = ZoneInfo(rt.rules.calendar.timezone)
    now = rt.clock.now()
    form: dict[str, Any] = {"topic": topic, "area": area, "text": text, "at": at}
    try:
        draft = mailings.MailingDraft(topic, area or None, text, _when(at, zone))
        clean = mailings.check_draft(rules, draft, now)
        with rt.factory() as session:
            if action == "create":
                mailing = mailings.create(
                    session, rules, draft, now, by=me.login, operator_id=me.id
                )
                session.commit()
                flash(request, f"Рассылка {mailing.id} запланирована.")
                return RedirectResponse(f"/ui/mailings/{mailing.id}", status_code=303)
            form["audience"] = mailings.audience(session, rules, topic, area or None)
    except mailings.MailingError as exc:
        return _page(request, rt, me, 422, error=str(exc), **form)
    form["report"] = check_text(clean, readability_bar(request))
    form["preview"] = mailings.citizen_text(rules, topic, clean, "telegram", "")
    return _page(request, rt, me, **form)


@router.get("/mailings/{mailing_id}")
def mailing_page(request: Request, rt: RuntimeDep, me: SupervisorDep, mailing_id: int) -> Response:
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        mailing = session.get(Mailing, mailing_id) if 0 < mailing_id < 2**31 else None
        if mailing is None:
            raise HTTPException(404, "Рассылка не найдена.")
        figures = mailings.figures(session, mailing_id)
    topic = rules.topic(mailing.topic)
    area = rules.area(mailing.area) if mailing.area else None
    return render(
        request, "mailing.html", me, section="mailings", m=mailing, f=figures,
        topic=topic.title if topic else mailing.topic, STATUSES=mailings.STATUSES,
        area=area.title if area else None,
    )  # fmt: skip


@router.post("/mailings/{mailing_id}/start")
def mailing_start(request: Request, rt: RuntimeDep, me: SupervisorDep, mailing_id: int) -> Response:
    """Send a draft (one the back office made through the API) at once."""
    with rt.factory() as session:
        mailing = session.get(Mailing, mailing_id) if 0 < mailing_id < 2**31 else None
        if mailing is None:
            raise HTTPException(404, "Рассылка не найдена.")
        if mailing.status != "draft":
            raise HTTPException(409, "Отправить можно только черновик.")
        mailings.schedule(session, mailing, None, rt.clock.now(), by=me.login)
        session.commit()
    flash(request, f"Рассылка {mailing_id} запланирована.")
    return RedirectResponse(f"/ui/mailings/{mailing_id}", status_code=303)


@router.post("/mailings/{mailing_id}/cancel")
def mailing_cancel(
    request: Request, rt: RuntimeDep, me: SupervisorDep, mailing_id: int
) -> Response:
    with rt.factory() as session:
        mailing = session.get(Mailing, mailing_id) if 0 < mailing_id < 2**31 else None
        if mailing is None:
            raise HTTPException(404, "Рассылка не найдена.")
        try:
            mailings.cancel(session, mailing, rt.clock.now(), by=me.login)
        except mailings.MailingError as exc:
            raise HTTPException(409, str(exc)) from None
        session.commit()
    return RedirectResponse(f"/ui/mailings/{mailing_id}", status_code=303)


# -- consent in the conversation view ---------------------------------------------------------


def _conversation(rt: RuntimeDep, conversation_id: int) -> Conversation:
    with rt.factory() as session:
        found = session.get(Conversation, conversation_id) if 0 < conversation_id < 2**31 else None
    if found is None:
        raise HTTPException(404, "Обращение не найдено.")
    return found


@router.post("/conversations/{conversation_id}/consent")
def consent_record(
    request: Request,
    rt: RuntimeDep,
    me: OperatorDep,
    conversation_id: int,
    scope: Annotated[str, Form(max_length=70)] = "",
) -> Response:
    """Record the consent the citizen asked for in this conversation (``situation:<id>`` or
    ``service:<id>``), with the wording of the rules."""
    conversation = _conversation(rt, conversation_id)
    kind, _, scope_id = scope.partition(":")
    with rt.factory() as session:
        try:
            consent.give(
                session, proactive_rules(rt.settings.rules_dir), conversation.citizen_id, kind,
                scope_id, rt.clock.now(), via="operator", by=me.login,
                conversation_id=conversation_id,
            )  # fmt: skip
        except consent.ConsentError as exc:
            raise HTTPException(422, str(exc)) from None
        session.commit()
    flash(request, "Согласие записано.")
    return RedirectResponse(f"/ui/c/{conversation_id}", status_code=303)


@router.post("/conversations/{conversation_id}/consent/{consent_id}/withdraw")
def consent_withdraw(
    request: Request, rt: RuntimeDep, me: OperatorDep, conversation_id: int, consent_id: int
) -> Response:
    conversation = _conversation(rt, conversation_id)
    with rt.factory() as session:
        found = session.get(Consent, consent_id) if 0 < consent_id < 2**31 else None
        # Only a consent of this conversation's citizen: an id from elsewhere is not found.
        if found is None or found.citizen_id != conversation.citizen_id:
            raise HTTPException(404, "Согласие не найдено.")
        consent.withdraw(
            session, proactive_rules(rt.settings.rules_dir), [found], rt.clock.now(),
            via="operator", by=me.login, conversation_id=conversation_id,
        )  # fmt: skip
        session.commit()
    flash(request, "Согласие отозвано.")
    return RedirectResponse(f"/ui/c/{conversation_id}", status_code=303)


def citizen_consents(rt: RuntimeDep, conversation: Conversation) -> dict[str, Any]:
    """What the conversation view shows: the registry, subscriptions and scopes to record."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        registry = consent.registry(session, conversation.citizen_id)
        subscriptions = consent.live_subscriptions(session, conversation.citizen_id)
    scopes = [(f"situation:{s.id}", f"Все услуги: {s.title}") for s in rules.life_situations]
    scopes += [(f"service:{v.id}", v.title) for s in rules.life_situations for v in s.services]
    return {
        "consents": [(c, rules.scope_title(c.scope_kind, c.scope_id)) for c in registry],
        "subscriptions": [(s, _topic_title(rules, s.topic)) for s in subscriptions],
        "consent_scopes": scopes,
        "FREQUENCIES": mailings.FREQUENCIES,
    }


def _topic_title(rules: ProactiveRules, topic_id: str) -> str:
    topic = rules.topic(topic_id)
    return topic.title if topic else topic_id


# -- one-click unsubscribe ----------------------------------------------------------------------


def _subscription(rt: RuntimeDep, token: str) -> Subscription:
    subscription_id = mailings.read_unsubscribe_token(rt.settings.secret_key, token)
    with rt.factory() as session:
        found = session.get(Subscription, subscription_id) if subscription_id else None
    if found is None:
        raise HTTPException(404, "Ссылка недействительна.")
    return found


@public_router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, rt: RuntimeDep, token: str) -> Response:
    found = _subscription(rt, token)
    topic = proactive_rules(rt.settings.rules_dir).topic(found.topic)
    return render(
        request, "unsubscribe.html", token=token, done=found.cancelled_at is not None,
        topic=topic.title if topic else found.topic,
    )  # fmt: skip


@public_router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, rt: RuntimeDep, token: str) -> Response:
    """One click (RFC 8058) or the page's button: the subscription is cancelled; again: done."""
    found = _subscription(rt, token)
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        subscription = session.get(Subscription, found.id)
        assert subscription is not None
        if subscription.cancelled_at is None:
            mailings.unsubscribe(
                session, rules, subscription, rt.clock.now(), via="email", by="citizen"
            )
            session.commit()
    topic = rules.topic(found.topic)
    return render(
        request, "unsubscribe.html", token=token, done=True,
        topic=topic.title if topic else found.topic,
    )  # fmt: skip
