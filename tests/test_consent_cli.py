"""``otklik consent`` and ``otklik mailing`` as real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from inbox.models import Application, AuditEvent, Consent, Mailing
from inbox.runtime import Runtime
from tests.helpers.applications_harness import make_application
from tests.helpers.cli import otklik, rt  # noqa: F401


def test_record_list_and_withdraw_a_consent_with_the_wording_kept(rt: Runtime) -> None:
    make_application(rt)
    with rt.factory() as session:
        citizen = session.exec(select(Application.citizen_id)).one()
    given = otklik(rt, "consent", "record", "--citizen", str(citizen), "--situation", "housing")
    assert given.returncode == 0, given.stderr
    assert "«Проблемы в доме и квартире»" in given.stdout
    again = otklik(rt, "consent", "record", "--citizen", str(citizen), "--situation", "housing")
    assert again.returncode == 0  # the same live consent, not a second one
    listed = otklik(rt, "consent", "list", "--citizen", str(citizen))
    assert "situation:housing" in listed.stdout and "LIVE" in listed.stdout
    assert listed.stdout.count("\n") == 1
    bad = otklik(rt, "consent", "record", "--citizen", str(citizen), "--service", "nope")
    assert bad.returncode == 2 and "Нет такой услуги" in bad.stderr
    both = otklik(rt, "consent", "record", "--citizen", str(citizen))
    assert both.returncode == 2 and "exactly one" in both.stderr
    nobody = otklik(rt, "consent", "record", "--citizen", "999999", "--service", "outages")
    assert nobody.returncode == 2 and "no citizen" in nobody.stderr
    gone = otklik(rt, "consent", "withdraw", "--citizen", str(citizen), "--situation", "housing")
    assert gone.returncode == 0, gone.stderr
    with rt.factory() as session:
        consent = session.exec(select(Consent)).one()
        assert consent.withdrawn_via == "cli" and consent.given_via == "cli"
        assert consent.wording.startswith("Я согласен получать")
        kinds = session.exec(select(AuditEvent.kind)).all()
        assert kinds.count("consent_given") == 1 and kinds.count("consent_withdrawn") == 1
    twice = otklik(rt, "consent", "withdraw", "--citizen", str(citizen), "--situation", "housing")
    assert twice.returncode == 2


def test_mailing_create_checks_its_input_and_list_shows_figures(rt: Runtime) -> None:
    made = otklik(rt, "mailing", "create", "--topic", "outages", "--text", "Завтра нет воды.")
    assert made.returncode == 0, made.stderr
    assert "0 subscribers" in made.stdout
    for args in (
        ["--topic", "nope", "--text", "x"],
        ["--topic", "outages", "--text", "  "],
        ["--topic", "outages", "--text", "x", "--area", "moon"],
        ["--topic", "outages", "--text", "x", "--at", "2026-12-01T09:00"],
        ["--topic", "outages", "--text", "\u202eevil"],
    ):
        refused = otklik(rt, "mailing", "create", *args)
        assert refused.returncode == 2, args
        assert "Traceback" not in refused.stderr
    listed = otklik(rt, "mailing", "list")
    assert "scheduled\toutages:all" in listed.stdout
    with rt.factory() as session:
        assert len(session.exec(select(Mailing)).all()) == 1
