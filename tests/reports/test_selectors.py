"""Each report on the hand-built history of conftest.py; every expected number is worked out by
hand there. Run on SQLite and on PostgreSQL, the same assertions hold."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Stage, Touch
from reports import selectors
from reports.models import QuarterlyTarget
from reports.selectors import ReportFilters
from sla.calendar import Calendar
from sla.models import BusinessCalendar, SlaPolicy
from tests.factories import LeadFactory
from tests.reports.conftest import RANGE, at, move

ALL = ReportFilters()


def run(report, filters=ALL, group_by=None, date_range=RANGE):
    return report(date_from=date_range[0], date_to=date_range[1], filters=filters, group_by=group_by)


def stages(result):
    return {row["stage"]: (row["entered"], row["to_next_rate"]) for row in result["stages"]}


def test_funnel_counts_entries_and_passes_skipped_stages(history):
    result = run(selectors.funnel)
    assert stages(result) == {
        "lead": (5, 1.0),
        "mql": (5, 0.6),  # C's return to MQL is the same lead; A's reassignment is no entry
        "sal": (3, 0.6667),  # A, B and D, whose import skipped SAL
        "sql": (2, 1.0),  # A and D
        "won": (2, None),
        "lost": (0, None),
        "recycled": (1, None),
        "disqualified": (1, None),
    }
    assert result["filters"]["from"] == "2026-11-02"


def test_funnel_of_first_week_only_leaves_out_b_acceptance(history):
    result = run(selectors.funnel, date_range=(RANGE[0], RANGE[0] + dt.timedelta(days=6)))
    assert stages(result)["sal"] == (2, 1.0)


def test_funnel_groups_by_source(history):
    result = run(selectors.funnel, group_by="source")
    groups = {g["key"]: stages(g) for g in result["groups"]}
    assert groups["ads"]["mql"] == (2, 0.5)
    assert groups["webinar"]["mql"] == (3, 0.6667)


def test_efficiency_counts_the_cohort_once_and_skips_as_passed(history):
    result = run(selectors.efficiency)
    assert {k: result[k] for k in ("mql", "sal", "sql")} == {"mql": 5, "sal": 3, "sql": 2}
    assert result["mql_to_sal_rate"] == 0.6
    assert result["sal_to_sql_rate"] == 0.6667
    assert result["mql_to_sql_rate"] == 0.4


def test_efficiency_filtered_by_owner_only_counts_that_reps_leads(history, rep):
    result = run(selectors.efficiency, filters=ReportFilters(owner=rep.username))
    assert (result["mql"], result["sal"], result["sql"]) == (3, 2, 1)


def test_sources_report_mql_volume_and_efficiency(history):
    result = run(selectors.sources)
    assert result["sources"] == [
        {"source": "webinar", "mql": 3, "sql": 1, "mql_to_sql_rate": 0.3333},
        {"source": "ads", "mql": 2, "sql": 1, "mql_to_sql_rate": 0.5},
    ]


def test_velocity_in_business_hours_across_the_weekend(history):
    result = run(selectors.velocity)
    # Decisions: A 4, B 4 (Fri 15:00 → Mon 11:00), C 16 and 8, D 16, E 4 → [4,4,4,8,16,16].
    assert result["mql_decision"] == {
        "median_hours": 6.0,
        "p90_hours": 16.0,
        "count": 6,
        "sla_hours": 16.0,
        "within_sla_rate": 1.0,
        "open_past_due": 0,
        "running": 0,
    }
    # First touches: A 1, B 6.5.
    assert result["sal_first_touch"] == {
        "median_hours": 3.75,
        "p90_hours": 5.95,
        "count": 2,
        "sla_hours": 8.0,
        "within_sla_rate": 1.0,
        "open_past_due": 0,
        "running": 0,
    }
    # MQL→won: A 4 days, D 2 days.
    assert result["mql_to_won"] == {"median_days": 3.0, "p90_days": 3.8, "count": 2}
    assert result["summary"] == "median within the 2-day SLA"


def test_velocity_ends_are_the_first_touch_after_sal_and_the_last_mql_entry_before_the_win(sla_policies, rep):
    # A lead recycled before the range returns as MQL on Monday 09:00, is touched while still an
    # MQL (09:30: not a SAL touch), accepted at 11:00 (2 h), touched at 13:00 and, logged
    # later, at 12:00 (the first: 1 h), and won on Wednesday 09:00: 2.0 days from the MQL entry
    # of the cycle that won, not from the one before the range.
    lead = LeadFactory(email="f@x.example", source="returning", owner=rep, stage=Stage.WON)
    move(lead, Stage.LEAD, Stage.MQL, at(-10, 10), "score")
    move(lead, Stage.MQL, Stage.RECYCLED, at(-9, 10), "bad_timing")
    move(lead, Stage.RECYCLED, Stage.MQL, at(0, 9), "hand_raiser")
    Touch.objects.create(lead=lead, user=rep, kind="call", outcome="no_answer", at=at(0, 9, 30))
    move(lead, Stage.MQL, Stage.SAL, at(0, 11))
    Touch.objects.create(lead=lead, user=rep, kind="call", outcome="connected", at=at(0, 13))
    Touch.objects.create(lead=lead, user=rep, kind="email", outcome="replied", at=at(0, 12))
    move(lead, Stage.SAL, Stage.SQL, at(1, 9))
    move(lead, Stage.SQL, Stage.WON, at(2, 9))

    result = run(selectors.velocity, filters=ReportFilters(source="returning"))
    assert (result["mql_decision"]["count"], result["mql_decision"]["median_hours"]) == (1, 2.0)
    assert (result["sal_first_touch"]["count"], result["sal_first_touch"]["median_hours"]) == (1, 1.0)
    assert result["mql_to_won"] == {"median_days": 2.0, "p90_days": 2.0, "count": 1}


def test_velocity_by_owner_and_week(history):
    result = run(selectors.velocity)
    by_owner = {row["owner"]: row["mql_decision"] for row in result["by_owner"]}
    assert by_owner["rep1"]["median_hours"] == 4.0  # A 4, B 4, E 4
    assert by_owner["rep2"]["median_hours"] == 16.0  # C 16 and 8, D 16
    assert by_owner["rep2"]["count"] == 3
    weeks = {row["week"]: row["sal_first_touch"]["count"] for row in result["by_week"]}
    assert weeks == {"2026-11-02": 1, "2026-11-09": 1}


def test_velocity_by_owner_names_owners_after_grouping_and_keeps_the_unowned(history):
    # Owners are grouped by id and named afterwards; a lead nobody owned at its MQL entry is
    # its own row (owner None): MQL Tue 09:00, accepted Tue 11:00 (2 h).
    lead = LeadFactory(email="g@x.example", source="webinar", owner=None, stage=Stage.SAL)
    move(lead, Stage.LEAD, Stage.MQL, at(1, 9), "score")
    move(lead, Stage.MQL, Stage.SAL, at(1, 11))
    result = run(selectors.velocity)
    by_owner = {row["owner"]: row["mql_decision"] for row in result["by_owner"]}
    assert list(by_owner) == [None, "rep1", "rep2"]
    assert (by_owner[None]["count"], by_owner[None]["median_hours"]) == (1, 2.0)
    assert (by_owner["rep1"]["count"], by_owner["rep2"]["count"]) == (3, 3)


def test_velocity_says_plainly_when_the_median_exceeds_the_sla(history):
    SlaPolicy.objects.filter(clock="mql_decision").update(duration_hours=4)
    result = run(selectors.velocity)
    assert result["mql_decision"]["within_sla_rate"] == 0.5
    assert result["summary"] == "median 6.0 hours against a 4-hour SLA"
    assert selectors.plain_verdict(median_hours=24.8, sla_hours=16, hours_per_day=8) == (
        "median 3.1 days against a 2-day SLA"
    )


def test_rejections_by_reason_and_stage_and_repeat_recycles(history):
    result = run(selectors.rejections)
    assert result["by_reason"] == [
        {"reason": "unable_to_reach", "stage": "mql", "to_stage": "recycled", "count": 2},
        {"reason": "spam", "stage": "mql", "to_stage": "disqualified", "count": 1},
    ]
    assert result["recycled_more_than_once"] == 1


def test_rejections_grouped_by_owner(history):
    result = run(selectors.rejections, group_by="owner")
    groups = {g["key"]: g for g in result["groups"]}
    assert groups["rep2"]["recycled_more_than_once"] == 1
    assert groups["rep1"]["recycled_more_than_once"] == 0
    assert groups["rep1"]["by_reason"][0]["reason"] == "spam"


def test_commitment_prorates_the_quarter_target_per_week(history, team):
    # Q4 2026 has 92 days: 920 promised is 10 a day, 70 a week.
    QuarterlyTarget.objects.create(year=2026, quarter=4, team=team, qualified_leads=920)
    result = run(selectors.commitment, filters=ReportFilters(team=team.pk))
    assert result["weeks"] == [
        {"week": "2026-11-02", "delivered": 6, "target": 70.0, "cumulative_delivered": 6, "cumulative_target": 70.0},
        {"week": "2026-11-09", "delivered": 0, "target": 70.0, "cumulative_delivered": 6, "cumulative_target": 140.0},
    ]
    assert result["promised"] == 140.0
    assert result["delivered"] == 6


def test_commitment_of_another_team_has_no_target(history, team):
    QuarterlyTarget.objects.create(year=2026, quarter=4, team=team, qualified_leads=920)
    other = type(team).objects.create(name="EMEA")
    result = run(selectors.commitment, filters=ReportFilters(team=other.pk))
    assert result["promised"] == 0 and result["delivered"] == 0


def test_unknown_group_by_is_refused(history):
    with pytest.raises(ValueError, match="group_by"):
        run(selectors.funnel, group_by="colour")


def test_business_hours_in_sql_equal_the_calendar(db):
    """Random spans over a DST change and a holiday, one lead per span, grouped by source so each
    group's median is that span's business hours."""
    calendar = BusinessCalendar.objects.create(
        name="Berlin",
        timezone="Europe/Berlin",
        working_days=[0, 1, 2, 3, 4],
        work_start=dt.time(8, 30),
        work_end=dt.time(17, 15),
        holidays=["2026-10-26"],
    )
    SlaPolicy.objects.create(name="Decide", stage=Stage.MQL, clock="mql_decision", calendar=calendar, duration_hours=16)
    pure: Calendar = calendar.as_calendar()
    rng = random.Random(7)
    base = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    expected = {}
    for index in range(25):
        start = base + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 14))
        end = start + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 9))
        lead = LeadFactory(source=f"s{index:02d}")
        move(lead, Stage.LEAD, Stage.MQL, start)
        move(lead, Stage.MQL, Stage.SAL, end)
        expected[f"s{index:02d}"] = round(pure.business_hours_between(start, end), 2)
    result = selectors.velocity(
        date_from=dt.date(2026, 10, 1), date_to=dt.date(2026, 11, 30), filters=ALL, group_by="source"
    )
    got = {g["key"]: g["mql_decision"]["median_hours"] for g in result["groups"]}
    assert got == expected


def test_report_queries_do_not_grow_with_leads(history, django_assert_max_num_queries):
    def add_leads(n):
        for _ in range(n):
            lead = LeadFactory(source="bulk", created_at=at(0, 8))
            move(lead, Stage.LEAD, Stage.MQL, at(1, 9))
            move(lead, Stage.MQL, Stage.SAL, at(1, 12))

    # The first velocity run builds the calendar's business-day table once; later runs only check it.
    run(selectors.velocity)
    counts: dict[str, list[int]] = {}
    for added in (10, 90):
        add_leads(added)
        for name, report in selectors.REPORTS.items():
            with CaptureQueriesContext(connection) as ctx:
                run(report, group_by="owner")
            counts.setdefault(name, []).append(len(ctx.captured_queries))
    for name, (with_10, with_100) in counts.items():
        assert with_100 == with_10, name
        with django_assert_max_num_queries(with_10):
            run(selectors.REPORTS[name], group_by="owner")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="several connections: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_reports_split_over_several_connections_give_the_same_numbers(history, monkeypatch):
    """Outside a transaction (a request) the independent queries of a report run at once on a
    connection each; inside one (here, as in the other tests) one after another. Same numbers."""
    import threading

    from django.db import transaction

    seen: set[str] = set()
    real = selectors._cohort_counts

    def spy(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "_cohort_counts", spy)
    for report in (selectors.funnel, selectors.efficiency, selectors.sources, selectors.velocity):
        for group_by in (None, "source", "owner"):
            apart = run(report, group_by=group_by)
            with transaction.atomic():
                together = run(report, group_by=group_by)
            assert apart == together, (report.__name__, group_by)
    assert any(name.startswith("report") for name in seen), seen
    # The worked-out numbers of the tests above, through the split path.
    assert stages(run(selectors.funnel))["sal"] == (3, 0.6667)
    velocity = run(selectors.velocity)
    assert (velocity["mql_decision"]["median_hours"], velocity["mql_decision"]["count"]) == (6.0, 6)
    assert velocity["sal_first_touch"]["median_hours"] == 3.75
    assert velocity["mql_to_won"]["median_days"] == 3.0
