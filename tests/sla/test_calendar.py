"""Business-time arithmetic: examples a manager would check by hand, and invariants (hypothesis)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sla.calendar import Calendar

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

utc_calendar = Calendar()
berlin = Calendar(tz="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 25), dt.date(2026, 12, 28)}))


def test_two_business_hours_from_friday_afternoon_end_on_monday_morning():
    friday = dt.datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert utc_calendar.add_business_hours(friday, 2) == dt.datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def test_clock_started_at_night_starts_counting_at_next_opening():
    tuesday_night = dt.datetime(2026, 3, 3, 22, 30, tzinfo=UTC)
    assert utc_calendar.add_business_hours(tuesday_night, 1) == dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def test_two_business_days_from_friday_noon_end_on_tuesday_noon():
    friday_noon = dt.datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    assert utc_calendar.add_business_hours(friday_noon, 16) == dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_holidays_are_skipped():
    christmas_eve = dt.datetime(2026, 12, 24, 16, 0, tzinfo=BERLIN)  # Thursday
    # Friday 25th and Monday 28th are holidays in this calendar: the clock resumes on Tuesday.
    due = berlin.add_business_hours(christmas_eve, 2)
    assert due.astimezone(BERLIN) == dt.datetime(2026, 12, 29, 10, 0, tzinfo=BERLIN)


def test_working_day_after_spring_dst_change_keeps_local_hours():
    # Europe/Berlin moves to summer time on Sunday 2026-03-29: Monday 10:00 local is 08:00 UTC.
    friday = dt.datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)
    due = berlin.add_business_hours(friday, 1)
    assert due == dt.datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert due.astimezone(BERLIN).hour == 10


def test_autumn_dst_change_does_not_add_an_hour_to_business_time():
    # America/New_York falls back on Sunday 2026-11-01: Friday 17:00 to Monday 17:00 is 8 h.
    friday = dt.datetime(2026, 10, 30, 17, 0, tzinfo=NEW_YORK)
    monday = dt.datetime(2026, 11, 2, 17, 0, tzinfo=NEW_YORK)
    assert Calendar(tz="America/New_York").business_hours_between(friday, monday) == 8


def test_same_moment_in_two_zones_gives_same_deadline():
    start_utc = dt.datetime(2026, 5, 5, 10, 0, tzinfo=UTC)
    assert berlin.add_business_hours(start_utc, 5) == berlin.add_business_hours(start_utc.astimezone(NEW_YORK), 5)


def test_naive_datetimes_and_negative_hours_are_refused():
    with pytest.raises(ValueError, match="aware"):
        utc_calendar.add_business_hours(dt.datetime(2026, 3, 2, 9, 0), 1)
    with pytest.raises(ValueError, match="negative"):
        utc_calendar.add_business_hours(dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC), -1)


def test_calendar_without_working_days_is_refused():
    with pytest.raises(ValueError):
        Calendar(working_days=frozenset())


# --- Invariants -----------------------------------------------------------------------------

zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"])
moments = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2028, 12, 31), timezones=st.just(UTC))
hours = st.floats(min_value=0, max_value=200, allow_nan=False).map(lambda h: round(h * 4) / 4)
calendars = st.builds(
    Calendar,
    tz=zones,
    working_days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.sampled_from([dt.time(8, 0), dt.time(9, 0), dt.time(9, 30)]),
    end=st.sampled_from([dt.time(12, 0), dt.time(17, 0), dt.time(18, 30)]),
    holidays=st.frozensets(st.dates(dt.date(2024, 1, 1), dt.date(2028, 12, 31)), max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, h=hours)
def test_business_hours_between_start_and_deadline_equal_the_hours_added(calendar, start, h):
    due = calendar.add_business_hours(start, h)
    assert due >= start
    assert calendar.business_hours_between(start, due) == pytest.approx(h, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, a=hours, b=hours)
def test_adding_in_two_steps_equals_adding_at_once(calendar, start, a, b):
    assume(a > 0)
    step = calendar.add_business_hours(calendar.add_business_hours(start, a), b)
    assert step == calendar.add_business_hours(start, a + b)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, a=hours, b=hours)
def test_more_business_hours_never_give_an_earlier_deadline(calendar, start, a, b):
    low, high = sorted((a, b))
    assert calendar.add_business_hours(start, low) <= calendar.add_business_hours(start, high)


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, start=moments, h=hours)
def test_a_deadline_falls_inside_working_hours_of_a_working_day(calendar, start, h):
    assume(h > 0)
    due = calendar.add_business_hours(start, h)
    local = due.astimezone(calendar.zone)
    assert calendar.is_working_day(local.date())
    assert calendar.start <= local.time().replace(tzinfo=None) <= calendar.end


@settings(max_examples=150, deadline=None)
@given(calendar=calendars, a=moments, b=moments)
def test_business_hours_between_is_antisymmetric_and_bounded_by_elapsed_time(calendar, a, b):
    forward = calendar.business_hours_between(a, b)
    assert forward == pytest.approx(-calendar.business_hours_between(b, a))
    assert abs(forward) <= abs((b - a).total_seconds()) / 3600 + 1e-9
