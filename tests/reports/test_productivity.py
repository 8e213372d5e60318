"""Rep productivity and SQL → won by AE on the dashboard (issue 25), from the stage history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import Actor
from leads.models import Lead
from reports.productivity import executive_outcomes, rep_productivity
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user

pytestmark = pytest.mark.django_db
YES = dict.fromkeys(lifecycle.BANT_KEYS, True)


class Clock:
    """`timezone.now()` held at a moment the test moves on (no sleeps, no wall clock)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def tick(self, delta: dt.timedelta) -> None:
        self.now += delta


def frozen(start: dt.datetime):
    clock = Clock(start)
    return clock, mock.patch("django.utils.timezone.now", lambda: clock.now)


def mql_for(rep, team) -> Lead:
    lead = LeadFactory(team=team)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, reason="manual")
    lead.refresh_from_db()
    if lead.owner_id != rep.pk:
        lifecycle.reassign(lead, actor=lifecycle.SYSTEM, owner=rep)
    return lead


def test_per_rep_figures_count_what_each_rep_did_in_the_period(rep, rep2, team, executive):
    add_rep(team, executive)
    team.memberships.filter(user=rep2).update(is_away=True)  # every MQL goes to rep1
    start = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    clock, patch = frozen(start)
    with patch:
        first = mql_for(rep, team)
        second = mql_for(rep, team)
        third = mql_for(rep, team)
        clock.tick(dt.timedelta(hours=1))
        lifecycle.log_touch(first, actor=Actor.person(rep), kind="call", outcome="no_answer")
        clock.tick(dt.timedelta(hours=2))
        lifecycle.log_touch(second, actor=Actor.person(rep), kind="email", outcome="replied")
        lifecycle.log_touch(second, actor=Actor.person(rep), kind="call", outcome="connected")
        lifecycle.accept(first, actor=Actor.person(rep))
        lifecycle.accept(second, actor=Actor.person(rep))
        lifecycle.reject(third, actor=Actor.person(rep), reason="no_budget")
        lifecycle.qualify(second, actor=Actor.person(rep), bant=YES, note="ready")
        second.refresh_from_db()
        assert second.owner == executive  # handed off
        lifecycle.close(second, actor=Actor.person(executive), outcome="won", amount=Decimal("1000"))
    today = timezone.localdate()
    figures = {f.username: f for f in rep_productivity(date_from=today - dt.timedelta(days=7), date_to=today)}
    mine = figures[rep.username]
    assert (mine.received, mine.accepted, mine.rejected, mine.sqls, mine.won) == (3, 2, 1, 1, 1)
    assert mine.rejected_by_reason == {"no_budget": 1}
    assert mine.touches == 3 and mine.touches_per_lead == 1.5
    assert mine.speed_to_lead_hours == 2.0  # first touches after 1 h and 3 h: median 2 h
    assert figures[rep2.username].received == 0
    assert executive.username not in figures  # AEs are not reps
    outcomes = executive_outcomes(date_from=today - dt.timedelta(days=7), date_to=today)
    assert [(o.username, o.sqls_received, o.won, o.lost, o.won_amount, o.win_rate) for o in outcomes] == [
        (executive.username, 1, 1, 0, Decimal("1000"), 1.0)
    ]
    # Another team's filter leaves these reps out.
    other = TeamFactory(name="EMEA", territories=["GB"])
    add_rep(other, make_user("rep9", "sales_rep"))
    assert [f.username for f in rep_productivity(date_from=today, date_to=today, team_id=other.pk)] == ["rep9"]


def test_the_dashboard_shows_the_productivity_tables(client, manager, rep, team):
    client.force_login(manager)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Rep productivity" in page and rep.username in page
    assert "SQL → won by account executive" in page and "No account executives yet" in page


def test_rejection_reasons_read_as_words():
    from reports.productivity import RepFigures

    figures = RepFigures(username="rep1", rejected_by_reason={"no_budget": 2, "other": 1})
    assert figures.rejected_reasons_text == "no budget 2, other 1"
