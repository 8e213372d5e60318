"""Business-time arithmetic: pure, no Django models.

A calendar is a time zone, the working weekdays, the working hours of a day and holidays.
Working intervals are built in local wall-clock time and converted to aware datetimes, so a
DST change moves the interval's UTC position, never its local hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

# A clock longer than this has no meaning for an SLA and would loop for a long time.
MAX_SPAN_DAYS = 366 * 5


@dataclass(frozen=True)
class Calendar:
    tz: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # raises for an unknown zone name
        if not self.working_days or not set(self.working_days) <= set(range(7)):
            raise ValueError("working_days must be a non-empty set of weekday numbers 0–6")
        if self.start >= self.end:
            raise ValueError("the working day must start before it ends")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def interval(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working interval of a local date as aware datetimes, or None on a day off."""
        if not self.is_working_day(day):
            return None
        zone = self.zone
        # In UTC, so differences are real elapsed time even across a DST change.
        return (
            dt.datetime.combine(day, self.start, tzinfo=zone).astimezone(dt.UTC),
            dt.datetime.combine(day, self.end, tzinfo=zone).astimezone(dt.UTC),
        )

    def _intervals_from(self, moment: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        day = moment.astimezone(self.zone).date()
        for offset in range(MAX_SPAN_DAYS):
            interval = self.interval(day + dt.timedelta(days=offset))
            if interval is not None:
                yield interval

    def add_business_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The moment `hours` working hours after `start` (an aware datetime), in UTC."""
        _require_aware(start)
        if hours < 0:
            raise ValueError("hours must not be negative")
        remaining = dt.timedelta(hours=hours)
        if not remaining:
            return start.astimezone(dt.UTC)
        for begin, end in self._intervals_from(start):
            cursor = max(start, begin)
            if cursor >= end:
                continue
            available = end - cursor
            if remaining <= available:
                return (cursor + remaining).astimezone(dt.UTC)
            remaining -= available
        raise ValueError(f"{hours} business hours do not fit in {MAX_SPAN_DAYS} days")

    def business_hours_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Working hours from `start` to `end`; negative when `end` is before `start`."""
        _require_aware(start)
        _require_aware(end)
        if end < start:
            return -self.business_hours_between(end, start)
        total = dt.timedelta()
        first = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        day = first
        while day <= last:
            interval = self.interval(day)
            if interval is not None:
                lo, hi = max(start, interval[0]), min(end, interval[1])
                if hi > lo:
                    total += hi - lo
            day += dt.timedelta(days=1)
        return total.total_seconds() / 3600

    @property
    def hours_per_day(self) -> float:
        today = dt.date(2001, 1, 1)
        return (dt.datetime.combine(today, self.end) - dt.datetime.combine(today, self.start)).total_seconds() / 3600


def _require_aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("business-time arithmetic needs aware datetimes")
