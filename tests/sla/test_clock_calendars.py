"""Speed to lead and the accept clock in business time across a weekend and a holiday, in two
time zones (issue 19, acceptance). The clocks use their policy's calendar."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from leads.models import SlaClock
from sla.models import SlaBreach
from sla.sweep import run_sweep

from .conftest import make_mql

pytestmark = pytest.mark.django_db


def _calendar(policies, zone: str, holidays: list[str]) -> None:
    calendar = policies[SlaClock.SAL_FIRST_TOUCH].calendar
    calendar.timezone = zone
    calendar.holidays = holidays
    calendar.save()


@pytest.mark.parametrize("zone", ["Europe/Madrid", "Europe/Bucharest"])
def test_speed_to_lead_from_friday_afternoon_skips_the_weekend_and_a_monday_holiday(team, policies, zone):
    # Friday 5 June 2026 16:30 local; Monday 8 June is a holiday in this calendar.
    _calendar(policies, zone, ["2026-06-08"])
    local = ZoneInfo(zone)
    lead = make_mql(at=dt.datetime(2026, 6, 5, 16, 30, tzinfo=local))

    # Half an hour on Friday, the other half on Tuesday morning, local time.
    assert lead.sla_clock == SlaClock.SAL_FIRST_TOUCH
    assert lead.sla_due_at == dt.datetime(2026, 6, 9, 9, 30, tzinfo=local)
    # Monday 12:00 local (a holiday): not breached yet; Tuesday 09:31 local: breached.
    assert run_sweep(now=dt.datetime(2026, 6, 8, 12, 0, tzinfo=local), notify=False).breached_total == 0
    run_sweep(now=dt.datetime(2026, 6, 9, 9, 31, tzinfo=local), notify=False)
    assert SlaBreach.objects.get(lead=lead).clock == SlaClock.SAL_FIRST_TOUCH


def test_the_same_utc_moment_gives_different_deadlines_in_two_time_zones(team, policies):
    moment = dt.datetime(2026, 6, 5, 14, 30, tzinfo=dt.UTC)  # 16:30 Madrid, 17:30 Bucharest
    _calendar(policies, "Europe/Madrid", [])
    madrid = make_mql(at=moment)
    _calendar(policies, "Europe/Bucharest", [])
    bucharest = make_mql(at=moment)
    assert madrid.sla_due_at == dt.datetime(2026, 6, 8, 9, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    assert bucharest.sla_due_at == dt.datetime(2026, 6, 8, 10, 0, tzinfo=ZoneInfo("Europe/Bucharest"))
