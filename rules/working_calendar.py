"""Deadlines in calendar hours or in working hours with Russian public holidays.

The government's decree on moving days off (Постановление о переносе выходных дней) is
published each autumn for the next year, so ``calendar.yaml`` lists every year it has as
``decree_years``. For any other year the calendar falls back to the Labour Code alone (art. 112):
the statutory holidays, and a holiday that falls on a weekend moves to the next working day,
except the New Year holidays (1-8 January), whose weekend days are moved only by the decree.
That fallback is right for most of a year, but it cannot know the decree's own transfers, so
it is reported (``unconfirmed_years``, a log warning) until the year's decree is added.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, PrivateAttr, field_validator, model_validator

from rules.datafile import load_model_file
from rules.errors import RulesFileError

log = logging.getLogger(__name__)

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class WorkingCalendar(BaseModel):
    timezone: str = "Europe/Moscow"
    hours: dict[str, time] = {"start": time(9), "end": time(18)}
    weekend: list[str] = ["saturday", "sunday"]
    holidays: list[date] = []
    workdays: list[date] = []
    # Labour Code art. 112 holidays as MM-DD; the New Year ones are not moved off weekends.
    statutory_holidays: list[str] = []
    new_year_holidays: list[str] = []
    # Years whose decree is transcribed in holidays/workdays; other years use the fallback.
    decree_years: list[int] = []

    _statutory_cache: dict[int, frozenset[date]] = PrivateAttr(default_factory=dict)
    _warned: set[int] = PrivateAttr(default_factory=set)

    @field_validator("statutory_holidays", "new_year_holidays")
    @classmethod
    def _month_days(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                date.fromisoformat(f"2024-{item}")  # a leap year, so 02-29 would pass
            except ValueError:
                raise ValueError(f"{item!r} is not a month-day like 01-07") from None
        return value

    @field_validator("decree_years")
    @classmethod
    def _decree_years_listed(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("weekend")
    @classmethod
    def _weekday_names(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower() not in _WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday names {bad}; use {', '.join(_WEEKDAYS)}")
        return [d.lower() for d in value]

    @field_validator("hours")
    @classmethod
    def _start_before_end(cls, value: dict[str, time]) -> dict[str, time]:
        if set(value) != {"start", "end"} or value["start"] >= value["end"]:
            raise ValueError("hours needs start and end, start before end")
        return value

    @model_validator(mode="after")
    def _dates_in_decree_years(self) -> WorkingCalendar:
        if self.decree_years:
            stray = [d for d in [*self.holidays, *self.workdays] if d.year not in self.decree_years]
            if stray:
                raise ValueError(
                    f"dates {[d.isoformat() for d in stray]} are in years missing from "
                    "decree_years; add the year there once its decree is transcribed"
                )
        return self

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.decree_years and (self.statutory_holidays or self.decree_years):
            return day not in self.statutory_days_off(day.year)
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return not self._is_weekend(day)

    def _is_weekend(self, day: date) -> bool:
        return _WEEKDAYS[day.weekday()] in self.weekend

    def statutory_days_off(self, year: int) -> frozenset[date]:
        """Weekends and holidays of ``year`` by the Labour Code alone (no decree): a holiday on
        a weekend gives the next working day off, except the New Year holidays."""
        cached = self._statutory_cache.get(year)
        if cached is not None:
            return cached
        if year not in self._warned:
            self._warned.add(year)
            log.warning(
                "working calendar: no decree for %s in calendar.yaml, using the Labour Code's "
                "holidays only (add the year's transfers and list it in decree_years)",
                year,
            )
        holidays = {date.fromisoformat(f"{year}-{md}") for md in self.statutory_holidays}
        new_year = {date.fromisoformat(f"{year}-{md}") for md in self.new_year_holidays}
        off = set(holidays)
        day = date(year, 1, 1)
        while day.year == year:
            if self._is_weekend(day):
                off.add(day)
            day += timedelta(days=1)
        for holiday in sorted(holidays - new_year):
            if not self._is_weekend(holiday):
                continue
            moved = holiday + timedelta(days=1)
            while moved in off:
                moved += timedelta(days=1)
            off.add(moved)
        result = frozenset(off)
        self._statutory_cache[year] = result
        return result

    def unconfirmed_years(self, start: date, days: int = 366) -> list[int]:
        """Years touched by the ``days`` from ``start`` that have no decree listed."""
        years = {start.year, (start + timedelta(days=days)).year}
        return sorted(y for y in years if y not in self.decree_years)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (aware), in UTC."""
        tz = ZoneInfo(self.timezone)
        moment = start.astimezone(tz)
        remaining = timedelta(hours=hours)
        open_t, close_t = self.hours["start"], self.hours["end"]
        for _ in range(3700):  # ten years of days: a calendar with no working days is an error
            day = moment.date()
            day_open = datetime.combine(day, open_t, tz)
            day_close = datetime.combine(day, close_t, tz)
            if self.is_working_day(day) and moment < day_close:
                moment = max(moment, day_open)
                available = day_close - moment
                if remaining <= available:
                    return (moment + remaining).astimezone(UTC)
                remaining -= available
            moment = datetime.combine(day + timedelta(days=1), open_t, tz)
        raise RulesFileError("working calendar has no working hours in the next ten years")


def load_calendar(path: Path) -> WorkingCalendar:
    return load_model_file(path, WorkingCalendar)
