"""Speed to lead and the minimum touches (issue 19, points 1 and 2): clocks that a touch stops
and that breach, each with its own clock code, when nobody touches the lead."""

from __future__ import annotations

import datetime as dt

import pytest

from leads import lifecycle
from leads.lifecycle import TouchesRequired
from leads.models import SlaClock, Stage
from sla.clocks import cadence
from sla.models import BreachAction, SlaBreach
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql

pytestmark = pytest.mark.django_db


def _touch(lead, rep, kind: str, at: dt.datetime) -> None:
    lifecycle.log_touch(lead, actor=lifecycle.Actor.person(rep), kind=kind, outcome="no_answer", at=at)


def test_an_mql_with_no_touch_breaches_speed_to_lead_after_one_business_hour_and_the_owner_is_told(
    team, policies, mailoutbox
):
    lead = make_mql()
    assert (lead.sla_clock, lead.sla_due_at) == (SlaClock.SAL_FIRST_TOUCH, MONDAY + dt.timedelta(hours=1))
    # Warned at 75 % of the hour.
    assert lead.sla_warn_at == MONDAY + dt.timedelta(minutes=45)

    result = run_sweep(now=MONDAY + dt.timedelta(hours=1, minutes=1))

    assert result.breached == {BreachAction.NOTIFY: 1}
    breach = SlaBreach.objects.get(lead=lead)
    assert breach.clock == SlaClock.SAL_FIRST_TOUCH and breach.due_at == MONDAY + dt.timedelta(hours=1)
    lead.refresh_from_db()
    # Still an MQL, now on its accept-or-reject clock.
    assert lead.stage == Stage.MQL and lead.sla_clock == SlaClock.MQL_DECISION
    recipients = sorted(address for mail in mailoutbox for address in mail.to)
    assert recipients == sorted([lead.owner.email, "manager@example.com"])


def test_a_touch_within_the_hour_meets_speed_to_lead(team, policies):
    lead = make_mql()
    _touch(lead, lead.owner, "call", MONDAY + dt.timedelta(minutes=20))
    lead.refresh_from_db()
    assert lead.sla_clock == SlaClock.MQL_DECISION
    assert run_sweep(now=MONDAY + dt.timedelta(hours=2)).breached_total == 0


def test_minimum_touches_breach_with_their_own_clock_when_the_window_ends_short(team, rep, policies):
    lead = make_mql(owner=rep, contacted=False)
    lifecycle.accept(lead, actor=lifecycle.Actor.person(lead.owner))
    lead.refresh_from_db()
    entered = lead.stage_entered_at
    for day in range(2):
        _touch(lead, lead.owner, "call", entered + dt.timedelta(days=day))
        _touch(lead, lead.owner, "email", entered + dt.timedelta(days=day))
    lead.refresh_from_db()
    assert lead.sla_clock == SlaClock.SAL_MIN_TOUCHES

    run_sweep(now=entered + dt.timedelta(days=14, minutes=1), simulate=True, notify=False)

    clocks = list(SlaBreach.objects.filter(lead=lead).order_by("id").values_list("clock", flat=True))
    assert SlaClock.SAL_MIN_TOUCHES in clocks


def test_meeting_the_minimum_stops_the_minimum_touches_clock(team, policies):
    lead = make_mql()
    lifecycle.accept(lead, actor=lifecycle.Actor.person(lead.owner))
    lead.refresh_from_db()
    entered = lead.stage_entered_at
    for day in range(3):
        _touch(lead, lead.owner, "call", entered + dt.timedelta(days=day))
        _touch(lead, lead.owner, "email", entered + dt.timedelta(days=day))
    lead.refresh_from_db()
    assert lead.sla_clock == SlaClock.SAL_QUALIFY


def test_unable_to_reach_from_mql_is_refused_naming_the_touches_still_missing(team, policies):
    lead = make_mql(at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    _touch(lead, lead.owner, "call", dt.datetime.now(dt.UTC))
    with pytest.raises(TouchesRequired) as refused:
        lifecycle.reject(lead, actor=lifecycle.Actor.person(lead.owner), reason="unable_to_reach")
    assert refused.value.details["missing"] == ["1 of 3 calls logged", "0 of 3 emails logged"]
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_touches_made_as_an_mql_count_toward_the_minimum_after_accepting(team, policies):
    lead = make_mql(at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    for _ in range(3):
        _touch(lead, lead.owner, "call", dt.datetime.now(dt.UTC))
        _touch(lead, lead.owner, "email", dt.datetime.now(dt.UTC))
    lifecycle.accept(lead, actor=lifecycle.Actor.person(lead.owner))
    transition = lifecycle.recycle(lead, actor=lifecycle.Actor.person(lead.owner), reason="unable_to_reach")
    assert transition.to_stage == Stage.RECYCLED


def test_cadence_on_the_lead_page_shows_the_touches_done_and_when_the_next_is_due(team, policies):
    lead = make_mql()
    _touch(lead, lead.owner, "call", MONDAY + dt.timedelta(hours=1))
    lead.refresh_from_db()
    friday_early = MONDAY + dt.timedelta(days=4, hours=18)

    assert cadence(lead, now=friday_early) == [
        "call 2 of 3 — due today",
        "email 1 of 3 — overdue since 2026-03-02",
    ]
