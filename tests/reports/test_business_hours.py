"""Business hours in SQL: the UTC-day table gives the same numbers as the calendar itself, at
the awkward moments (interval and UTC-day edges, a working day that crosses midnight UTC, two
working days starting in one UTC day, a DST change), and follows the calendar when it is
edited. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import Stage
from reports import selectors
from reports.selectors import ReportFilters
from sla.business_days import ensure_business_days
from sla.models import BusinessCalendar, BusinessDay, BusinessUtcDay, SlaPolicy
from tests.factories import LeadFactory
from tests.reports.conftest import move

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def decision_hours(spans: dict[str, tuple[dt.datetime, dt.datetime]]) -> dict[str, float]:
    """One lead per span (MQL at its start, accepted at its end), grouped by source so that each
    group's median is that span's business hours."""
    for source, (start, end) in spans.items():
        lead = LeadFactory(source=source)
        move(lead, Stage.LEAD, Stage.MQL, start)
        move(lead, Stage.MQL, Stage.SAL, end)
    result = selectors.velocity(
        date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 10, 31), filters=ReportFilters(), group_by="source"
    )
    return {g["key"]: g["mql_decision"]["median_hours"] for g in result["groups"]}


@pytest.fixture
def auckland(db):
    """Working hours 09:00–17:00 in Auckland are 20:00–04:00 or 21:00–05:00 UTC: every working
    day crosses midnight UTC, and New Zealand moves its clocks on 27 September 2026."""
    calendar = BusinessCalendar.objects.create(name="Auckland", timezone="Pacific/Auckland", holidays=["2026-10-26"])
    SlaPolicy.objects.create(name="Decide", stage=Stage.MQL, clock="mql_decision", calendar=calendar, duration_hours=16)
    return calendar


def test_business_hours_at_awkward_moments_equal_the_calendar(auckland):
    pure = auckland.as_calendar()
    spans = {
        # UTC-day edges (midnight UTC) in and out of working time.
        "a-utc-day-edges": (utc(2026, 9, 8, 0, 0), utc(2026, 9, 9, 0, 0)),
        "b-edge-to-edge-across-days": (utc(2026, 9, 7, 12, 0), utc(2026, 9, 10, 0, 0)),
        # Exactly at a working interval's start and end (21:00 and 05:00 UTC before the change).
        "c-interval-start-to-end": (utc(2026, 9, 14, 21, 0), utc(2026, 9, 15, 5, 0)),
        "d-start-to-start": (utc(2026, 9, 14, 21, 0), utc(2026, 9, 15, 21, 0)),
        # Across the DST change (Sunday 27 September) and over a weekend.
        "e-across-dst": (utc(2026, 9, 24, 23, 30), utc(2026, 9, 29, 1, 15, 30)),
        # Inside a weekend only: no business time.
        "f-weekend": (utc(2026, 10, 3, 2, 0), utc(2026, 10, 4, 10, 0)),
        # Over a holiday (Labour Day, Monday 26 October), to the millisecond.
        "g-holiday": (utc(2026, 10, 22, 22, 0, 0), dt.datetime(2026, 10, 27, 23, 59, 59, 999000, tzinfo=UTC)),
        # Start and end at the same moment.
        "h-zero": (utc(2026, 10, 13, 1, 0), utc(2026, 10, 13, 1, 0)),
    }
    expected = {source: round(pure.business_hours_between(*span), 2) for source, span in spans.items()}
    assert decision_hours(spans) == expected


def test_business_hours_follow_an_edited_calendar(auckland):
    spans = {"week": (utc(2026, 10, 4, 20, 0), utc(2026, 10, 9, 4, 0))}  # Mon 09:00 → Fri 17:00 local
    assert decision_hours(spans) == {"week": 40.0}
    auckland.work_end = dt.time(13, 0)
    auckland.save()
    result = selectors.velocity(
        date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 10, 31), filters=ReportFilters(), group_by="source"
    )
    assert result["groups"][0]["mql_decision"]["median_hours"] == 20.0
    signatures = set(BusinessDay.objects.filter(calendar=auckland).values_list("signature", flat=True))
    assert set(BusinessUtcDay.objects.filter(calendar=auckland).values_list("signature", flat=True)) == signatures
    assert len(signatures) == 1


def test_a_decision_at_the_moment_of_the_mql_entry_takes_no_time(auckland):
    moment = utc(2026, 9, 16, 22, 0)
    lead = LeadFactory(source="instant")
    move(lead, Stage.LEAD, Stage.MQL, moment)
    move(lead, Stage.MQL, Stage.SAL, moment)
    move(lead, Stage.SAL, Stage.WON, moment)
    result = selectors.velocity(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 10, 31), filters=ReportFilters())
    assert (result["mql_decision"]["count"], result["mql_decision"]["median_hours"]) == (1, 0.0)
    assert (result["mql_to_won"]["count"], result["mql_to_won"]["median_days"]) == (1, 0.0)


def test_two_working_days_starting_in_one_utc_day(db):
    """Working 00:30–01:30 in London: the clocks go forward at 01:00 UTC on Sunday 29 March 2026,
    so Sunday's work starts at 00:30 UTC and Monday's at 23:30 UTC, both on the 29th."""
    calendar = BusinessCalendar.objects.create(
        name="Night shift",
        timezone="Europe/London",
        working_days=[0, 1, 2, 3, 4, 5, 6],
        work_start=dt.time(0, 30),
        work_end=dt.time(1, 30),
    )
    SlaPolicy.objects.create(name="Decide", stage=Stage.MQL, clock="mql_decision", calendar=calendar, duration_hours=16)
    ensure_business_days(calendar)
    day = BusinessUtcDay.objects.get(calendar=calendar, number=int(utc(2026, 3, 29).timestamp() // 86_400))
    starts = (utc(2026, 3, 29, 0, 30).timestamp(), utc(2026, 3, 29, 23, 30).timestamp())
    assert (day.next_start, day.later_start) == starts
    pure = calendar.as_calendar()
    spans = {
        "a-first": (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 0, 45)),
        "b-between": (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 23, 40)),
        "c-second": (utc(2026, 3, 29, 23, 45), utc(2026, 3, 30, 0, 10)),
        "d-across": (utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 12, 0)),
    }
    expected = {source: round(pure.business_hours_between(*span), 2) for source, span in spans.items()}
    for source, (start, end) in spans.items():
        lead = LeadFactory(source=source)
        move(lead, Stage.LEAD, Stage.MQL, start)
        move(lead, Stage.MQL, Stage.SAL, end)
    result = selectors.velocity(
        date_from=dt.date(2026, 3, 20), date_to=dt.date(2026, 3, 31), filters=ReportFilters(), group_by="source"
    )
    assert {g["key"]: g["mql_decision"]["median_hours"] for g in result["groups"]} == expected
