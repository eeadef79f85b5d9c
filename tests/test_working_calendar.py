"""The working calendar: the decree years as listed, other years by the Labour Code alone."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from rules.errors import RulesFileError
from rules.working_calendar import WorkingCalendar, load_calendar

CALENDAR = Path(__file__).resolve().parents[1] / "rules" / "calendar.yaml"


@pytest.fixture
def calendar() -> WorkingCalendar:
    return load_calendar(CALENDAR)


def days_off(cal: WorkingCalendar, year: int) -> set[date]:
    day, found = date(year, 1, 1), set()
    while day.year == year:
        if not cal.is_working_day(day):
            found.add(day)
        day += timedelta(days=1)
    return found


def test_decree_year_is_taken_as_listed(calendar: WorkingCalendar) -> None:
    assert not calendar.is_working_day(date(2026, 1, 9))  # moved from Saturday 3 January
    assert not calendar.is_working_day(date(2026, 12, 31))  # moved from Sunday 4 January
    assert calendar.is_working_day(date(2025, 11, 1))  # a Saturday made a working day
    assert not calendar.is_working_day(date(2025, 11, 3))


def test_labour_code_fallback_matches_a_real_decree_but_its_transfers(
    calendar: WorkingCalendar,
) -> None:
    """2026 by the Labour Code alone differs from the decree only by the two New Year weekend
    days the decree moved (3 Jan -> 9 Jan, 4 Jan -> 31 Dec)."""
    decree = days_off(calendar, 2026)
    code_only = calendar.model_copy(update={"decree_years": [2025]})
    assert decree - days_off(code_only, 2026) == {date(2026, 1, 9), date(2026, 12, 31)}
    assert days_off(code_only, 2026) - decree == set()


def test_year_without_decree_uses_the_labour_code(
    calendar: WorkingCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rules.working_calendar"):
        off = days_off(calendar, 2027)
    assert {date(2027, 1, d) for d in range(1, 9)} <= off
    assert date(2027, 2, 23) in off and date(2027, 3, 8) in off and date(2027, 11, 4) in off
    # Saturday 1 May -> Monday 3 May; Sunday 9 May -> Monday 10 May; Saturday 12 June -> 14 June
    assert {date(2027, 5, 3), date(2027, 5, 10), date(2027, 6, 14)} <= off
    # New Year holidays on a weekend (2 and 3 January 2027) move only by decree
    assert date(2027, 1, 11) not in off
    assert date(2027, 5, 4) not in off and date(2027, 2, 24) not in off
    # 104 weekend days; 1 and 4-8 Jan; 23 Feb, 8 Mar, 4 Nov; three days moved off weekends
    assert len(off) == 104 + 6 + 3 + 3
    assert any("2027" in r.getMessage() for r in caplog.records)
    assert calendar.unconfirmed_years(date(2026, 11, 23)) == [2027]
    assert calendar.unconfirmed_years(date(2026, 3, 1), days=30) == []


def test_working_hours_cross_into_a_year_without_decree(calendar: WorkingCalendar) -> None:
    # Thursday 31 Dec 2026 is a decree day off; 1-8 Jan 2027 are holidays, 9-10 Jan a weekend.
    start = datetime(2026, 12, 30, 14, 0, tzinfo=UTC)  # 17:00 in Moscow
    assert calendar.add_working_hours(start, 2) == datetime(2027, 1, 11, 7, 0, tzinfo=UTC)


def test_listing_a_date_outside_decree_years_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text("decree_years: [2026]\nholidays: [2027-01-11]\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"2027-01-11.*decree_years"):
        load_calendar(path)
    path.write_text('statutory_holidays: ["13-01"]\n', encoding="utf-8")
    with pytest.raises(RulesFileError, match="month-day"):
        load_calendar(path)
