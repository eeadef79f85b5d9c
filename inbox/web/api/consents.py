"""``/api/v1/consents``: the consent registry for the agency's back-office system
(docs/api.md).

Scopes ``consents:read`` and ``consents:write`` (``inbox/api_tokens.py``). A citizen is
addressed by the id the operator UI and ``otklik consent`` show. The back office records a
consent the citizen asked for (in writing, on the phone, at the counter) and withdraws one,
through the functions the bot, the UI and the command line call (``inbox.consent.give``,
``inbox.consent.withdraw``): the wording of ``rules/proactive.yaml`` is kept with the record,
who is ``api:<token name>``, each change is an audit event, and a withdrawal cancels the
subscriptions no consent covers any more and stops messages already queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from core.clock import as_utc
from inbox import consent
from inbox.models import AuditEvent, Citizen, Consent, Conversation, Subscription
from inbox.web.api.applications import AUTH_ERRORS
from inbox.web.api.auth import ConsentReaderDep, ConsentWriterDep
from inbox.web.api.errors import ApiRoute, ErrorOut
from inbox.web.deps import RuntimeDep
from rules.proactive import ProactiveRules, proactive_rules

router = APIRouter(prefix="/api/v1/consents", tags=["consents"], route_class=ApiRoute)

#: Audit kinds that make a citizen's consent history.
HISTORY_KINDS = ("consent_given", "consent_withdrawn", "subscribed", "unsubscribed")
MAX_HISTORY = 500
CITIZEN_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No citizen (or consent) with this id"},
    409: {"model": ErrorOut, "description": "Already withdrawn, or the citizen's record was "
          "merged into another (use that id)"},
    422: {"model": ErrorOut, "description": "Invalid input, or a scope not in the catalogue"},
}  # fmt: skip
CitizenId = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True, description="The citizen's id")]
ConsentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The consent's id")]
ScopeId = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,30}$", description="An id of "
                               "rules/proactive.yaml: a life situation or a service")]  # fmt: skip


class ConsentOut(BaseModel):
    id: int
    citizen_id: int
    scope_kind: Literal["situation", "service"]
    scope_id: str
    scope_title: str | None = Field(description="null if the scope left the rules file")
    wording: str = Field(description="The exact text the citizen agreed to")
    live: bool
    given_at: datetime
    given_via: str = Field(description="bot, operator, cli, email or api")
    given_by: str = Field(description="citizen, an operator's login, a system user, a token")
    withdrawn_at: datetime | None
    withdrawn_via: str | None
    withdrawn_by: str | None


class SubscriptionOut(BaseModel):
    id: int
    topic: str
    area: str | None
    frequency: Literal["now", "daily", "weekly"]
    channel: str | None = Field(description="Where the mailings go")
    created_at: datetime
    cancelled_at: datetime | None


class HistoryEvent(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="consent_given, consent_withdrawn, subscribed, unsubscribed")
    actor: str = Field(description="<via>:<who>, e.g. bot:citizen, operator:ivanova, api:1c")
    consent_id: int | None = None
    subscription_id: int | None = None
    scope: str | None = Field(default=None, description="situation:<id> or service:<id>")
    topic: str | None = None
    wording: str | None = Field(default=None, description="On consent_given: the text agreed to")


class CitizenConsents(BaseModel):
    citizen_id: int
    consents: list[ConsentOut] = Field(description="Live and withdrawn, newest first")
    subscriptions: list[SubscriptionOut] = Field(description="Live ones")
    history: list[HistoryEvent] = Field(description=f"Newest first, at most {MAX_HISTORY}")


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    citizen_id: CitizenId
    scope_kind: Literal["situation", "service"] = Field(
        description="situation: every service of a life situation; service: one service"
    )
    scope_id: ScopeId


class ConsentRecorded(BaseModel):
    consent: ConsentOut
    created: bool = Field(description="false: a live consent to this scope was there already")


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    citizen_id: CitizenId = Field(description="Whose consent it is: another's id is refused")


class WithdrawOut(BaseModel):
    consent: ConsentOut
    cancelled_subscriptions: list[SubscriptionOut] = Field(
        description="Subscriptions no live consent covers any more"
    )


class ScopeOut(BaseModel):
    id: str
    title: str
    wording: str = Field(description="What the citizen agrees to (kept with the consent)")


class SituationOut(ScopeOut):
    services: list[ScopeOut]


def _error(detail: str, code: str, field: str | None, status: int) -> JSONResponse:
    body = ErrorOut(detail=detail, code=code, field=field)
    return JSONResponse(body.model_dump(), status_code=status)


def _consent(c: Consent, rules: ProactiveRules) -> ConsentOut:
    assert c.id is not None
    return ConsentOut(
        id=c.id, citizen_id=c.citizen_id, scope_kind=c.scope_kind,  # type: ignore[arg-type]
        scope_id=c.scope_id, scope_title=rules.scope_title(c.scope_kind, c.scope_id),
        wording=c.wording, live=c.withdrawn_at is None, given_at=as_utc(c.given_at),
        given_via=c.given_via, given_by=c.given_by,
        withdrawn_at=as_utc(c.withdrawn_at) if c.withdrawn_at else None,
        withdrawn_via=c.withdrawn_via, withdrawn_by=c.withdrawn_by,
    )  # fmt: skip


def _subscription(session: Session, s: Subscription) -> SubscriptionOut:
    assert s.id is not None
    conversation = session.get(Conversation, s.conversation_id)
    return SubscriptionOut(
        id=s.id, topic=s.topic, area=s.area, frequency=s.frequency,  # type: ignore[arg-type]
        channel=conversation.channel if conversation else None,
        created_at=as_utc(s.created_at),
        cancelled_at=as_utc(s.cancelled_at) if s.cancelled_at else None,
    )  # fmt: skip


def _history(session: Session, citizen_id: int) -> list[HistoryEvent]:
    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.kind).in_(HISTORY_KINDS))
        .where(col(AuditEvent.data)["citizen_id"].as_integer() == citizen_id)
        .order_by(col(AuditEvent.id).desc())
        .limit(MAX_HISTORY)
    ).all()
    found: list[HistoryEvent] = []
    for e in events:
        assert e.id is not None
        data = e.data or {}
        found.append(
            HistoryEvent(
                id=e.id,
                at=as_utc(e.at),
                kind=e.kind,
                actor=e.actor,
                consent_id=data.get("consent_id"),
                subscription_id=data.get("subscription_id"),
                scope=data.get("scope"),
                topic=data.get("topic"),
                wording=data.get("wording"),
            )
        )
    return found


def _citizen_problem(session: Session, citizen_id: int) -> JSONResponse | None:
    """A 404 for an unknown citizen, a 409 for a merged record; None when it is fine."""
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        return _error("Житель не найден.", "not_found", "citizen_id", 404)
    if citizen.merged_into_id is not None:
        return _error(
            f"Запись жителя объединена с записью {citizen.merged_into_id}: используйте её.",
            "conflict", "citizen_id", 409,
        )  # fmt: skip
    return None


@router.get("/scopes", response_model=list[SituationOut], responses=AUTH_ERRORS)
def scopes(rt: RuntimeDep, _caller: ConsentReaderDep) -> list[SituationOut]:
    """The catalogue a consent may cover: life situations with their services, and the
    wording the citizen agrees to for each."""
    rules = proactive_rules(rt.settings.rules_dir)
    return [
        SituationOut(
            id=ls.id,
            title=ls.title,
            wording=rules.consent_text("situation", ls.id),
            services=[
                ScopeOut(id=s.id, title=s.title, wording=rules.consent_text("service", s.id))
                for s in ls.services
            ],
        )
        for ls in rules.life_situations
    ]


@router.get(
    "", response_model=CitizenConsents, responses={**AUTH_ERRORS, **CITIZEN_ERRORS}
)  # fmt: skip
def citizen_consents(
    rt: RuntimeDep,
    _caller: ConsentReaderDep,
    citizen_id: Annotated[int, Query(ge=1, le=2**31 - 1, description="The citizen's id")],
) -> Any:
    """A citizen's consents (live and withdrawn, with the wording), live subscriptions and
    the audit history of both."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        if session.get(Citizen, citizen_id) is None:
            return _error("Житель не найден.", "not_found", "citizen_id", 404)
        return CitizenConsents(
            citizen_id=citizen_id,
            consents=[_consent(c, rules) for c in consent.registry(session, citizen_id)],
            subscriptions=[
                _subscription(session, s) for s in consent.live_subscriptions(session, citizen_id)
            ],
            history=_history(session, citizen_id),
        )


@router.post(
    "", response_model=ConsentRecorded, status_code=201,
    responses={**AUTH_ERRORS, **CITIZEN_ERRORS,
               200: {"model": ConsentRecorded, "description": "Already live: nothing new"}},
)  # fmt: skip
def record_consent(rt: RuntimeDep, caller: ConsentWriterDep, body: ConsentIn) -> Any:
    """Record a consent the citizen asked for, with the catalogue's wording. A live consent
    to the same scope is returned as it is (200), so a retry records nothing twice."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        problem = _citizen_problem(session, body.citizen_id)
        if problem is not None:
            return problem
        before = {c.id for c in consent.live(session, body.citizen_id)}
        try:
            given = consent.give(
                session, rules, body.citizen_id, body.scope_kind, body.scope_id,
                rt.clock.now(), via="api", by=caller.name,
            )  # fmt: skip
        except consent.ConsentError as exc:
            session.rollback()
            return _error(str(exc), "invalid", "scope_id", 422)
        session.commit()
        created = given.id not in before
        result = ConsentRecorded(consent=_consent(given, rules), created=created)
    if created:
        return result
    return JSONResponse(result.model_dump(mode="json"), status_code=200)


@router.post(
    "/{consent_id}/withdraw", response_model=WithdrawOut,
    responses={**AUTH_ERRORS, **CITIZEN_ERRORS},
)  # fmt: skip
def withdraw_consent(
    rt: RuntimeDep, caller: ConsentWriterDep, consent_id: ConsentId, body: WithdrawIn
) -> Any:
    """Withdraw a consent on the citizen's request; the subscriptions it alone covered are
    cancelled, and messages already queued under it are not sent."""
    rules = proactive_rules(rt.settings.rules_dir)
    with rt.factory() as session:
        found = session.exec(
            select(Consent).where(Consent.id == consent_id).with_for_update()
        ).first()
        # Only a consent of the citizen named: an id of someone else's is not found.
        if found is None or found.citizen_id != body.citizen_id:
            return _error("Согласие не найдено.", "not_found", "consent_id", 404)
        if found.withdrawn_at is not None:
            return _error("Это согласие уже отозвано.", "conflict", "consent_id", 409)
        cancelled = consent.withdraw(
            session, rules, [found], rt.clock.now(), via="api", by=caller.name
        )
        session.commit()
        return WithdrawOut(
            consent=_consent(found, rules),
            cancelled_subscriptions=[_subscription(session, s) for s in cancelled],
        )
