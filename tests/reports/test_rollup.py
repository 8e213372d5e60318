"""The report read model gives the live queries' numbers: every count report, over ranges that
cut a recycled lead's repeat entries in different places, with each filter and grouping it
serves — on SQLite and on PostgreSQL. And it is only read where it can answer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from leads.models import Stage, Team
from reports import readmodel, selectors
from reports.models import QuarterlyTarget, RollupRepeat
from reports.readmodel import catch_up
from reports.selectors import ReportFilters
from tests.factories import LeadFactory
from tests.reports.conftest import MONDAY, RANGE, at, move

ROLLUP_REPORTS = ["funnel", "efficiency", "sources", "rejections", "commitment"]
RANGES = [
    RANGE,
    (MONDAY, MONDAY + dt.timedelta(days=2)),  # C's first recycle, not its return
    (MONDAY + dt.timedelta(days=3), MONDAY + dt.timedelta(days=4)),  # C's return and second recycle
    (MONDAY + dt.timedelta(days=1), MONDAY + dt.timedelta(days=3)),
    (MONDAY - dt.timedelta(days=30), MONDAY - dt.timedelta(days=1)),  # nothing happened
]


@pytest.fixture
def longer_history(history, team, rep, rep2):
    """The hand-built history, plus a lead of another team and country that comes back to MQL
    three times and is recycled three times (all repeats), and one created on a later day."""
    other = Team.objects.create(name="EMEA")
    f = LeadFactory(
        email="f@x.example",
        source="events",
        owner=rep2,
        team=other,
        country="DE",
        stage=Stage.RECYCLED,
        created_at=at(1, 8),
    )
    for day in (1, 3, 8):
        move(f, Stage.LEAD if day == 1 else Stage.RECYCLED, Stage.MQL, at(day, 9), "score")
        move(f, Stage.MQL, Stage.RECYCLED, at(day, 16) if day != 3 else at(4, 10), "bad_timing")
    move(f, Stage.RECYCLED, Stage.MQL, at(9, 9), "hand_raiser")
    move(f, Stage.MQL, Stage.SAL, at(9, 10))
    LeadFactory(email="g@x.example", source="ads", owner=None, team=None, country="FR", created_at=at(5, 8))
    QuarterlyTarget.objects.create(year=2026, quarter=4, team=team, qualified_leads=91)
    return history


def run(name, *, filters=ReportFilters(), group_by=None, date_range=RANGE):  # noqa: B008 - frozen, immutable
    return selectors.REPORTS[name](date_from=date_range[0], date_to=date_range[1], filters=filters, group_by=group_by)


def live(name, **kwargs):
    with override_settings(REPORTS_READ_MODEL=False):
        return run(name, **kwargs)


def from_rollup(name, **kwargs):
    """The report, asserting it read no stage history: it came from the read model."""
    with CaptureQueriesContext(connection) as ctx:
        result = run(name, **kwargs)
    history_reads = [q["sql"] for q in ctx.captured_queries if "leads_stagetransition" in q["sql"]]
    assert history_reads == [], f"{name} {kwargs} read the stage history"
    return result


def shapes(team, rep):
    """Every filter and grouping the rollup serves: none, source, and one of team, owner and
    country, each alone or with source."""
    filters = [
        ReportFilters(),
        ReportFilters(source="ads"),
        ReportFilters(team=team.pk),
        ReportFilters(owner=rep.username),
        ReportFilters(country="de"),
        ReportFilters(source="webinar", owner=rep.username),
        ReportFilters(owner="nobody"),
    ]
    for f in filters:
        dims = {d for d, on in (("team", f.team is not None), ("owner", f.owner), ("country", f.country)) if on}
        for group_by in (None, "source", "team", "owner", "country"):
            if len(dims | ({group_by} - {None, "source"})) <= 1:
                yield f, group_by


@pytest.mark.parametrize("name", ROLLUP_REPORTS)
def test_read_model_gives_the_live_numbers_for_every_shape_it_serves(longer_history, team, rep, name):
    live_results = {
        (f, g, r): live(name, filters=f, group_by=g, date_range=r) for f, g in shapes(team, rep) for r in RANGES
    }
    catch_up()
    compared = 0
    for (f, g, r), expected in live_results.items():
        assert from_rollup(name, filters=f, group_by=g, date_range=r) == expected, (f, g, r)
        compared += 1
    assert compared >= 100


def test_read_model_counts_distinct_leads_and_repeat_recycles_as_worked_out_by_hand(longer_history, team):
    """F (EMEA) enters MQL on days 1, 3, 8 and 9 and is recycled on days 1, 4 and 8."""
    catch_up()
    emea = ReportFilters(team=Team.objects.get(name="EMEA").pk)
    assert RollupRepeat.objects.filter(measure="mql").count() == 4  # C once, F three times

    week1 = (MONDAY, MONDAY + dt.timedelta(days=6))
    funnel = {row["stage"]: row["entered"] for row in run("funnel", filters=emea, date_range=week1)["stages"]}
    assert (funnel["lead"], funnel["mql"], funnel["recycled"], funnel["sal"]) == (1, 1, 1, 0)
    whole = {row["stage"]: row["entered"] for row in run("funnel", filters=emea)["stages"]}
    assert (whole["mql"], whole["sal"]) == (1, 1)

    # Recycled on days 1 and 4: more than once in week 1. From day 2 on, the last recycle before
    # day 4's end is the second: still counted. Up to day 3 only the first one: not.
    assert run("rejections", filters=emea, date_range=week1)["recycled_more_than_once"] == 1
    assert (
        run("rejections", filters=emea, date_range=(MONDAY, MONDAY + dt.timedelta(days=3)))["recycled_more_than_once"]
        == 0
    )
    # Over both weeks: C (days 2 and 4) and F (days 1, 4, 8).
    assert run("rejections")["recycled_more_than_once"] == 2

    # The cohort: F is one MQL however often it came back, and its last return reached SAL.
    efficiency = run("efficiency", filters=emea)
    assert (efficiency["mql"], efficiency["sal"], efficiency["sql"]) == (1, 1, 0)
    # Commitment counts MQL entries, not leads: F's four.
    assert run("commitment", filters=emea)["delivered"] == 4


def test_shapes_the_read_model_cannot_answer_run_live(longer_history, team, rep):
    catch_up()
    kwargs = {"filters": ReportFilters(team=team.pk), "group_by": "owner"}
    with CaptureQueriesContext(connection) as ctx:
        result = run("funnel", **kwargs)
    assert any("leads_stagetransition" in q["sql"] for q in ctx.captured_queries)
    assert result == live("funnel", **kwargs)


def test_dimensions_stay_frozen_when_a_lead_changes_hands_later(longer_history, rep, rep2):
    catch_up()
    before = run("efficiency", group_by="owner")
    # A lead changes hands after its stage changes were counted: they stay where they were...
    c = longer_history["c"]
    c.owner = rep
    c.save(update_fields=["owner"])
    assert run("efficiency", group_by="owner") == before
    assert live("efficiency", group_by="owner") != before
    # ...until the read model is rebuilt, which freezes the dimensions as they are now.
    readmodel.rebuild()
    assert from_rollup("efficiency", group_by="owner") == live("efficiency", group_by="owner")


def test_reports_run_live_until_the_read_model_has_caught_up_once(longer_history):
    with CaptureQueriesContext(connection) as ctx:
        run("funnel")
    assert any("leads_stagetransition" in q["sql"] for q in ctx.captured_queries)
    catch_up()
    from_rollup("funnel")


def test_catching_up_twice_changes_nothing(longer_history):
    first = catch_up()
    assert (first.transitions, first.leads, first.done) == (23, 7, True)  # 22 stage entries and a reassignment
    rows = sorted(RollupRepeat.objects.values_list("measure", "day", "prev_day", "next_day", "team"))
    again = catch_up()
    assert (again.transitions, again.leads) == (0, 0)
    assert sorted(RollupRepeat.objects.values_list("measure", "day", "prev_day", "next_day", "team")) == rows


def test_catch_up_task_says_what_it_counted(longer_history):
    from reports.tasks import catch_up_reports

    assert catch_up_reports() == {"transitions": 23, "leads": 7, "batches": 1}
    assert catch_up_reports() == {"transitions": 0, "leads": 0, "batches": 1}
