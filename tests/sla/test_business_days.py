"""The business-day tables of a calendar are rebuilt only when it changed: an unchanged one is
checked with one query. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Stage
from sla.business_days import ensure_business_days
from sla.models import BusinessCalendar, SlaPolicy


@pytest.fixture
def auckland(db):
    """Working hours 09:00–17:00 in Auckland are 20:00–04:00 or 21:00–05:00 UTC: every working
    day crosses midnight UTC, and New Zealand moves its clocks on 27 September 2026."""
    calendar = BusinessCalendar.objects.create(name="Auckland", timezone="Pacific/Auckland", holidays=["2026-10-26"])
    SlaPolicy.objects.create(name="Decide", stage=Stage.MQL, clock="mql_decision", calendar=calendar, duration_hours=16)
    return calendar


def test_unchanged_calendar_is_checked_with_one_query(auckland):
    ensure_business_days(auckland)
    with CaptureQueriesContext(connection) as ctx:
        ensure_business_days(auckland)
    assert len(ctx.captured_queries) == 1
