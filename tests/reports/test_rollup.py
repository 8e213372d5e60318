"""The report rollup gives the live queries' numbers: every count report, over ranges that cut a
recycled lead's repeat entries in different places, with each filter and grouping the rollup
serves — on SQLite and on PostgreSQL. And it is only read while fresh and where it can answer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from leads.models import Stage, Team
from reports import rollup, selectors
from reports.models import QuarterlyTarget, ReportRollup, RollupRepeat
from reports.selectors import ReportFilters
from tests.factories import LeadFactory
from tests.reports.conftest import MONDAY, RANGE, at, move

ROLLUP_REPORTS = ["funnel", "efficiency", "sources", "rejections", "commitment", "velocity"]
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
    with override_settings(REPORTS_ROLLUP_MAX_AGE=0):
        return run(name, **kwargs)


def from_rollup(name, **kwargs):
    """The report, asserting it read no stage history: it came from the rollup."""
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
def test_rollup_gives_the_live_numbers_for_every_shape_it_serves(longer_history, team, rep, name):
    live_results = {
        (f, g, r): live(name, filters=f, group_by=g, date_range=r) for f, g in shapes(team, rep) for r in RANGES
    }
    rollup.build()
    compared = 0
    for (f, g, r), expected in live_results.items():
        assert from_rollup(name, filters=f, group_by=g, date_range=r) == expected, (f, g, r)
        compared += 1
    assert compared >= 100


def test_rollup_counts_distinct_leads_and_repeat_recycles_as_worked_out_by_hand(longer_history, team):
    """F (EMEA) enters MQL on days 1, 3, 8 and 9 and is recycled on days 1, 4 and 8."""
    rollup.build()
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


def test_shapes_the_rollup_cannot_answer_run_live(longer_history, team, rep):
    rollup.build()
    kwargs = {"filters": ReportFilters(team=team.pk), "group_by": "owner"}
    with CaptureQueriesContext(connection) as ctx:
        result = run("funnel", **kwargs)
    assert any("leads_stagetransition" in q["sql"] for q in ctx.captured_queries)
    assert result == live("funnel", **kwargs)


def test_rollup_is_a_snapshot_read_only_while_fresh(longer_history, rep, rep2):
    rollup.build()
    before = run("efficiency", group_by="owner")
    # A lead changes hands after the build: the rollup still says what it said...
    c = longer_history["c"]
    c.owner = rep
    c.save(update_fields=["owner"])
    assert run("efficiency", group_by="owner") == before
    assert live("efficiency", group_by="owner") != before
    # ...until it is rebuilt,
    rollup.build()
    assert from_rollup("efficiency", group_by="owner") == live("efficiency", group_by="owner")
    # and once it is older than REPORTS_ROLLUP_MAX_AGE the reports run live.
    ReportRollup.objects.filter(pk=1).update(built_at=timezone.now() - dt.timedelta(hours=1))
    c.owner = rep2
    c.save(update_fields=["owner"])
    assert run("efficiency", group_by="owner") == before


def test_rebuilding_gives_the_same_rollup(longer_history):
    first = rollup.build()
    rows = sorted(RollupRepeat.objects.values_list("measure", "day", "prev_day", "next_day", "team"))
    again = rollup.build()
    assert again.entries == first.entries == 22
    assert sorted(RollupRepeat.objects.values_list("measure", "day", "prev_day", "next_day", "team")) == rows


def test_build_task_reports_what_it_built(longer_history):
    from reports.tasks import build_report_rollup

    assert build_report_rollup() == {"built": True, "entries": 22, "seconds": ReportRollup.objects.get().build_seconds}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="several connections: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_leaves_the_build_to_the_first():
    """While one worker holds the build (its lock on the state row), another returns at once
    without building; the first's build then stands."""
    import threading

    from django.db import connections, transaction

    ReportRollup.objects.create(pk=1)
    locked, release = threading.Event(), threading.Event()

    def first_worker():
        try:
            with transaction.atomic():
                ReportRollup.objects.select_for_update().get(pk=1)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert locked.wait(10)
        assert rollup.build() is None
        assert ReportRollup.objects.get(pk=1).built_at is None
    finally:
        release.set()
        thread.join()
    assert rollup.build().built_at is not None


# --- Velocity's percentiles from the bins ---------------------------------------------------------


@pytest.fixture
def many_spans(sla_policies, team, rep, rep2):
    """Six weeks of random MQL decisions, first touches and wins (seeded): lengths on and off
    working hours, over weekends, equal ones (decisions at the MQL minute: 0 hours) and the SLA's
    exact hours, by two reps and nobody, across sources and countries."""
    import random

    from leads.models import Touch

    rng = random.Random(6)
    other = Team.objects.create(name="EMEA")
    first = MONDAY - dt.timedelta(days=21)
    for n in range(90):
        owner = rng.choice([rep, rep2, None])
        lead = LeadFactory(
            email=f"r{n}@x.example",
            source=rng.choice(["ads", "webinar", "events"]),
            owner=owner,
            team=rng.choice([team, other, None]),
            country=rng.choice(["US", "DE"]),
            stage=Stage.MQL,
            created_at=at(-22, 8),
        )
        mql = dt.datetime.combine(
            first + dt.timedelta(days=rng.randrange(42)), dt.time(rng.randrange(24)), tzinfo=dt.UTC
        ) + dt.timedelta(minutes=rng.choice([0, 0, 15, 37]))
        move(lead, Stage.LEAD, Stage.MQL, mql, "score")
        kind = rng.random()
        if kind < 0.1:
            continue  # undecided: no span
        if kind < 0.2:
            decided = mql  # 0 hours, a value many spans share
        elif kind < 0.3 and mql.weekday() < 4 and 9 <= mql.hour < 17:
            decided = mql + dt.timedelta(days=2)  # exactly the SLA's 16 working hours
        else:
            decided = mql + dt.timedelta(hours=rng.randrange(1, 120), minutes=rng.choice([0, 30]))
        if rng.random() < 0.3:
            move(lead, Stage.MQL, Stage.RECYCLED, decided, "bad_timing")
            continue
        move(lead, Stage.MQL, Stage.SAL, decided)
        if rng.random() < 0.7:
            Touch.objects.create(
                lead=lead,
                user=owner,
                kind="call",
                outcome="connected",
                at=decided + dt.timedelta(hours=rng.randrange(0, 40)),
            )
        if rng.random() < 0.3:
            move(lead, Stage.SAL, Stage.WON, decided + dt.timedelta(days=rng.randrange(1, 9)))


VELOCITY_RANGES = [
    (MONDAY - dt.timedelta(days=21), MONDAY + dt.timedelta(days=20)),  # all of it, Monday to Sunday
    (MONDAY - dt.timedelta(days=30), MONDAY + dt.timedelta(days=60)),  # wider than the history
    (MONDAY - dt.timedelta(days=12), MONDAY + dt.timedelta(days=9)),  # mid-week to mid-week
    (MONDAY + dt.timedelta(days=2), MONDAY + dt.timedelta(days=4)),  # inside one week
    (MONDAY + dt.timedelta(days=3), MONDAY + dt.timedelta(days=3)),  # one day
    (MONDAY - dt.timedelta(days=8), MONDAY - dt.timedelta(days=1)),  # Sunday to Sunday
    (MONDAY + dt.timedelta(days=30), MONDAY + dt.timedelta(days=40)),  # after it
    # Starting and ending on each day of the week (the rollup counts half-weeks and edge days).
    *((MONDAY - dt.timedelta(days=20 - k), MONDAY + dt.timedelta(days=4 + k)) for k in range(6)),
]


@pytest.mark.parametrize("bins", [2, 5, 128])
def test_velocity_percentiles_from_the_bins_are_the_sorted_ones(many_spans, monkeypatch, bins):
    """The unfiltered velocity report, overall, by rep, by week and by each grouping, read from
    the bins (few bins: many lengths per bin, ranks falling either side of a bin's edge) gives
    the live report's numbers."""
    from reports import rollup_spans

    monkeypatch.setattr(rollup_spans, "BINS", bins)
    groupings = (None, "source", "team", "owner", "country")
    expected = {(g, r): live("velocity", group_by=g, date_range=r) for g in groupings for r in VELOCITY_RANGES}
    rollup.build()
    cut = ReportRollup.objects.get().span_bins["decision"]
    if bins < 128:  # bins holding several lengths: their ranks are sorted out of RollupSpan
        assert sum(1 for low, high in zip(cut["low"], cut["high"], strict=True) if low != high) >= 2
    assert 16.0 in cut["upper"]
    for (g, r), result in expected.items():
        with CaptureQueriesContext(connection) as ctx:
            assert from_rollup("velocity", group_by=g, date_range=r) == result, (g, r)
        assert any("reports_rollupspanperiod" in q["sql"] for q in ctx.captured_queries)
    whole = expected[(None, VELOCITY_RANGES[0])]
    assert whole["mql_decision"]["count"] >= 60 and len(whole["by_week"]) == 6 and len(whole["by_owner"]) == 3


def test_velocity_sorts_the_spans_when_the_bins_cannot_answer(many_spans):
    """Filtered, or with the SLA changed since the build, velocity sorts the range's spans from
    the rollup: the live numbers, with the SLA as it is now."""
    from sla.models import SlaPolicy

    rollup.build()
    shapes_ = [{"filters": ReportFilters(source="ads")}, {"filters": ReportFilters(country="de"), "group_by": "source"}]
    SlaPolicy.objects.filter(clock="mql_decision").update(duration_hours=12)
    shapes_.append({})
    for kwargs in shapes_:
        with CaptureQueriesContext(connection) as ctx:
            result = from_rollup("velocity", date_range=VELOCITY_RANGES[0], **kwargs)
        assert result == live("velocity", date_range=VELOCITY_RANGES[0], **kwargs)
        assert any('"reports_rollupspan"' in q["sql"] for q in ctx.captured_queries)
    assert result["mql_decision"]["sla_hours"] == 12
    # Unfiltered, the touches and wins still come from the bins; the decisions (cut at 16 hours) not.
    from_bins = [q["sql"] for q in ctx.captured_queries if "reports_rollupspanperiod" in q["sql"]]
    assert any("'touch'" in sql for sql in from_bins)
    assert not any("'decision'" in sql for sql in from_bins)
