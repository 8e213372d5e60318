"""Honest compliance (issue 19, point 5): "within SLA" counts every clock started in the period.
Met in time and breached (decided late, or still open past due) make the rate; clocks still
running are shown apart and never counted as met."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads.models import Stage
from reports import selectors
from reports.selectors import ReportFilters
from tests.factories import LeadFactory, make_user
from tests.reports.conftest import RANGE, at, move

pytestmark = pytest.mark.django_db

ALL = ReportFilters()


def _velocity(date_range=RANGE, filters=ALL):
    return selectors.velocity(date_from=date_range[0], date_to=date_range[1], filters=filters)


def test_a_rep_whose_mqls_all_breached_and_are_still_open_shows_zero_percent_not_one_hundred(history):
    late = make_user("late", "sales_rep")
    for hour in (10, 11, 12):
        lead = LeadFactory(stage=Stage.MQL, owner=late, stage_entered_at=at(0, hour))
        move(lead, Stage.LEAD, Stage.MQL, at(0, hour), "score")

    by_owner = {row["owner"]: row["mql_decision"] for row in _velocity()["by_owner"]}

    assert by_owner["late"]["within_sla_rate"] == 0.0
    assert by_owner["late"]["open_past_due"] == 3 and by_owner["late"]["running"] == 0
    # The reps who decided in time keep their figure; the team's total counts the misses.
    assert by_owner["rep1"]["within_sla_rate"] == 1.0


def test_the_total_counts_open_past_due_clocks_as_misses(history):
    before = _velocity()["mql_decision"]
    lead = LeadFactory(stage=Stage.MQL, owner=None, stage_entered_at=at(2, 10))
    move(lead, Stage.LEAD, Stage.MQL, at(2, 10), "score")

    after = _velocity()["mql_decision"]

    decided = before["count"]
    assert after["open_past_due"] == 1
    assert after["within_sla_rate"] == round(before["within_sla_rate"] * decided / (decided + 1), 4)
    assert after["count"] == decided  # medians are of decided clocks only


def test_a_clock_still_running_is_shown_apart_and_never_counted_as_met(history, rep):
    now = timezone.now()
    lead = LeadFactory(stage=Stage.MQL, owner=rep, stage_entered_at=now - dt.timedelta(minutes=1))
    move(lead, Stage.LEAD, Stage.MQL, now - dt.timedelta(minutes=1), "score")
    today = timezone.localdate()

    result = _velocity(date_range=(today, today))

    assert result["mql_decision"]["running"] == 1
    assert result["mql_decision"]["open_past_due"] == 0
    assert result["mql_decision"]["within_sla_rate"] is None  # nothing decided yet: no rate, not 100 %
