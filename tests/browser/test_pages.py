"""The issue's acceptance in a real browser: a rep's day from the inbox to a SQL, another rep
locked out, and the manager's dashboard drawing every chart without a JavaScript error."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import SYSTEM, HistoricalStep
from leads.models import Stage, StageTransition, Touch
from sla.models import BusinessCalendar, SlaPolicy
from tests.browser.conftest import log_in
from tests.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def policies(db):
    calendar = BusinessCalendar.objects.create(name="Always on")
    common = {"calendar": calendar, "business_time": False, "warning_share": 0.75}
    SlaPolicy.objects.create(
        name="Accept or reject", stage=Stage.MQL, clock="mql_decision", duration_hours=48, **common
    )
    SlaPolicy.objects.create(name="First touch", stage=Stage.SAL, clock="sal_first_touch", duration_hours=1, **common)
    SlaPolicy.objects.create(
        name="Minimum touches",
        stage=Stage.SAL,
        clock="sal_min_touches",
        duration_hours=336,
        min_calls=3,
        min_emails=3,
        **common,
    )
    SlaPolicy.objects.create(name="Qualify or drop", stage=Stage.SAL, clock="sal_qualify", duration_hours=336, **common)


def test_rep_accepts_in_place_works_the_lead_to_sql_and_another_rep_cannot_open_it(
    live_server, new_page, screenshot, rep, rep2, team, policies
):
    now = timezone.now()
    # Older work already in the inbox, all due later than the new MQL.
    for i in range(4):
        LeadFactory(
            stage=Stage.SAL,
            team=team,
            owner=rep,
            company=f"Initech {i}",
            stage_entered_at=now - dt.timedelta(days=3 + i),
            sla_clock="sal_qualify",
            sla_due_at=now + dt.timedelta(days=5 + i),
            fit_score=55,
            behavior_score=40,
        )
    new = LeadFactory(
        country="US",
        first_name="Nina",
        last_name="Newlead",
        company="Globex",
        job_title="VP Marketing",
        fit_score=82,
        behavior_score=51,
        source="webinar",
    )
    new.events.create(type="demo_request", event_id="browser-evt-1", properties={"url": "/demo"})
    lifecycle.promote_to_mql(new, actor=SYSTEM, owner=rep)
    new.refresh_from_db()
    assert new.stage == Stage.MQL and new.sla_due_at is not None

    page = new_page()
    log_in(page, live_server.url, "rep1")
    assert page.url.endswith("/inbox/")

    first_row = page.locator("table.inbox tbody tr").first
    assert first_row.get_attribute("id") == f"lead-row-{new.pk}"
    assert "Nina Newlead" in first_row.inner_text()
    countdown = first_row.locator(".sla")
    # The nearest clock of a new MQL is speed to lead: one hour to the first touch.
    assert re.fullmatch(r"59m left|1h 0m left|1h left", countdown.inner_text()), countdown.inner_text()
    assert "sla-ok" in countdown.get_attribute("class")
    screenshot(page, "inbox")

    # Accept in place: the page is not reloaded (the marker survives), the row turns SAL.
    page.evaluate("window.__inboxMarker = 'same page'")
    first_row.get_by_role("button", name="Accept").click()
    page.wait_for_selector(f'#lead-row-{new.pk}[data-stage="sal"]')
    assert page.evaluate("window.__inboxMarker") == "same page"
    assert "Accepted" in page.locator(f"#lead-row-{new.pk}").inner_text()
    assert page.locator(f"#lead-row-{new.pk} .stage").inner_text() == "SAL"

    # The lead page: three calls and three emails, each logged in place.
    page.locator(f"#lead-row-{new.pk} a.name").click()
    page.wait_for_url(f"**/leads/{new.pk}/")
    for n, kind in enumerate(["call", "call", "call", "email", "email", "email"], start=1):
        page.select_option("#touch-kind", kind)
        page.select_option("#touch-outcome", "no_answer" if kind == "call" else "replied")
        page.fill("#touch-note", f"attempt {n}")
        page.click("#touch-form button[type=submit]")
        page.wait_for_function("n => document.querySelectorAll('#timeline li.tl-touch').length === n", arg=n)
    assert page.locator("#touch-progress").inner_text() == "Minimum touches met."
    assert page.evaluate("document.querySelectorAll('#timeline li.tl-touch').length") == 6

    # BANT: four yes with notes, then qualify.
    for key in ("budget", "authority", "need", "timeline"):
        page.check(f"#bant-{key}_0")
        page.fill(f"#bant-{key}_note", f"{key} confirmed")
    page.fill("#bant-note", "Demo booked for Tuesday")
    page.click("#bant-form button[type=submit]")
    page.wait_for_selector("#lead-stage:text('SQL')")
    timeline = page.locator("#timeline").inner_text()
    assert "SAL → SQL" in timeline and "by rep1" in timeline
    assert "budget yes (budget confirmed)" in timeline
    assert page.locator("#bant-form").count() == 0
    screenshot(page, "lead")

    new.refresh_from_db()
    assert new.stage == Stage.SQL
    assert Touch.objects.filter(lead=new).count() == 6
    assert StageTransition.objects.filter(lead=new, to_stage=Stage.SQL, actor=rep).exists()

    # A second rep of the same team cannot open it.
    other = new_page()
    log_in(other, live_server.url, "rep2")
    response = other.goto(f"{live_server.url}/leads/{new.pk}/")
    assert response.status == 404
    assert other.locator(f"#lead-row-{new.pk}").count() == 0


def test_a_rep_who_accepts_a_lead_a_teammate_already_took_reads_why_in_place(
    live_server, new_page, rep, rep2, team, policies
):
    from leads.lifecycle import Actor
    from leads.models import TeamMembership

    # Everyone away at promotion: the MQL waits unassigned in both reps' inboxes.
    TeamMembership.objects.filter(team=team).update(is_away=True)
    lead = LeadFactory(country="US", first_name="Tara", last_name="Taken")
    lifecycle.promote_to_mql(lead, actor=SYSTEM)
    TeamMembership.objects.filter(team=team).update(is_away=False)

    page = new_page()
    log_in(page, live_server.url, "rep1")
    row = page.locator(f"#lead-row-{lead.pk}")
    assert "team, unassigned" in row.inner_text()
    page.evaluate("window.__inboxMarker = 'same page'")

    lifecycle.accept(lead, actor=Actor.person(rep2))  # rep2 is quicker
    row.get_by_role("button", name="Accept").click()

    page.wait_for_selector(f"#lead-row-{lead.pk} .error")
    assert page.locator(f"#lead-row-{lead.pk} .error").inner_text() == (
        "rep2 accepted this lead first; it is no longer in your inbox."
    )
    assert page.locator(f"#lead-row-{lead.pk} button", has_text="Accept").count() == 0
    assert page.evaluate("window.__inboxMarker") == "same page"
    assert page.locator("#net-error").is_hidden()


def _history(team, rep, *, now: dt.datetime) -> None:
    """Enough past stage changes that every report has something to draw."""
    plans = [
        [("mql", 60), ("sal", 59), ("sql", 50), ("won", 20)],
        [("mql", 45), ("sal", 44.5), ("sql", 30)],
        [("mql", 40), ("sal", 39), ("recycled", 25, "no_budget")],
        [("mql", 33), ("recycled", 31, "bad_timing"), ("mql", 12), ("recycled", 10, "no_need")],
        [("mql", 20), ("disqualified", 19, "spam")],
        [("mql", 15), ("sal", 14.8)],
        [("mql", 8), ("sal", 7.5), ("sql", 3)],
        [("mql", 5)],
    ]
    for i, plan in enumerate(plans):
        lead = LeadFactory(country="US", team=team, source="webinar" if i % 2 else "paid_search")
        steps = [
            HistoricalStep(
                to_stage=step[0],
                at=now - dt.timedelta(days=step[1]),
                reason=step[2] if len(step) > 2 else "",
                owner_id=rep.pk,
            )
            for step in plan
        ]
        lifecycle.record_history(lead, steps=steps, actor=SYSTEM)


def test_manager_dashboard_draws_every_chart_without_javascript_errors(
    live_server, new_page, screenshot, manager, rep, team, policies
):
    _history(team, rep, now=timezone.now())

    page = new_page()
    log_in(page, live_server.url, "manager")
    assert page.url.endswith("/dashboard/")
    page.wait_for_selector("body[data-dashboard=ready]")

    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('.chartcard[data-report]')).map(card => ({
            report: card.dataset.report,
            chart: !!(window.Chart && window.Chart.getChart(card.querySelector('canvas'))),
            status: card.querySelector('[data-status]').textContent.trim(),
        }))"""
    )
    assert {d["report"] for d in drawn} == {"funnel", "efficiency", "velocity", "rejections", "commitment"}
    for card in drawn:
        assert card["chart"] or card["status"].startswith("No "), card
        assert not card["status"].startswith("Could not load"), card
    assert next(d for d in drawn if d["report"] == "funnel")["chart"]
    assert page.locator('[data-kpi="mql"]').inner_text() not in ("–", "")
    assert page.locator("#per-rep-table tbody tr").count() >= 1
    for report in ("funnel", "efficiency", "velocity", "rejections", "commitment"):
        href = page.locator(f"#chart-{report} header a").get_attribute("href")
        assert href.startswith(f"/api/v1/reports/{report}/?") and href.endswith("format=csv")
    screenshot(page, "dashboard")
    assert page.console_log.errors == []


# The report JSON of SPEC section 9, as the reports endpoints document it.
SPEC_REPORTS = {
    "funnel": {
        "filters": {},
        "stages": [
            {"stage": "mql", "entered": 120, "to_next_rate": 0.667},
            {"stage": "sal", "entered": 80, "to_next_rate": 0.6125},
            {"stage": "sql", "entered": 49, "to_next_rate": 0.35},
            {"stage": "won", "entered": 17, "to_next_rate": None},
        ],
    },
    "efficiency": {
        "filters": {},
        "mql": 120,
        "sal": 80,
        "sql": 49,
        "mql_to_sal_rate": 0.667,
        "sal_to_sql_rate": 0.6125,
        "mql_to_sql_rate": 0.408,
    },
    "velocity": {
        "filters": {},
        "mql_decision": {"median_hours": 24.8, "p90_hours": 40.0, "sla_hours": 16, "within_sla_rate": 0.31},
        "sal_first_touch": {"median_hours": 0.6, "p90_hours": 2.5, "sla_hours": 1, "within_sla_rate": 0.72},
        "mql_to_won": {"median_days": 41.5},
        "summary": "median 3.1 days against a 2-day SLA",
        "by_owner": [
            {
                "owner": "rep1",
                "count": 40,
                "mql_decision": {"median_hours": 12.0, "p90_hours": 30.0, "within_sla_rate": 0.55},
            },
            {
                "owner": "rep2",
                "count": 35,
                "mql_decision": {"median_hours": 30.5, "p90_hours": 52.0, "within_sla_rate": 0.2},
            },
        ],
        "by_week": [
            {"week": "2026-09-07", "mql_decision": {"median_hours": 20.0, "p90_hours": 35.0}},
            {"week": "2026-09-14", "mql_decision": {"median_hours": 26.0, "p90_hours": 44.0}},
            {"week": "2026-09-21", "mql_decision": {"median_hours": 18.5, "p90_hours": 30.0}},
        ],
    },
    "rejections": {
        "filters": {},
        "by_reason": [
            {"reason": "no_budget", "stage": "mql", "count": 12},
            {"reason": "bad_timing", "stage": "sal", "count": 7},
            {"reason": "spam", "stage": "mql", "count": 3},
        ],
        "recycled_more_than_once": 4,
    },
    "commitment": {
        "filters": {},
        "promised": 300,
        "delivered": 120,
        "weeks": [
            {"week": "2026-09-07", "delivered": 40, "prorated_target": 23},
            {"week": "2026-09-14", "delivered": 38, "prorated_target": 46},
            {"week": "2026-09-21", "delivered": 42, "prorated_target": 69},
        ],
    },
}


def test_dashboard_draws_the_documented_report_shapes_and_says_when_velocity_misses_the_sla(
    live_server, new_page, screenshot, manager
):
    import json

    page = new_page()
    requested: list[str] = []

    def fulfil(route):
        report = route.request.url.split("/api/v1/reports/")[1].split("/")[0]
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(SPEC_REPORTS[report]))

    page.route("**/api/v1/reports/**", fulfil)
    log_in(
        page, live_server.url, "manager", next_url="/dashboard/?date_from=2026-09-01&date_to=2026-09-30&source=webinar"
    )
    page.wait_for_selector("body[data-dashboard=ready]")

    charts = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('.chartcard[data-report]')).map(
            card => [card.dataset.report, !!window.Chart.getChart(card.querySelector('canvas'))]))"""
    )
    assert charts == dict.fromkeys(SPEC_REPORTS, True)
    assert all("source=webinar" in url for url in requested)
    whole_range = [url for url in requested if "from=2026-09-01&to=2026-09-30" in url]
    assert {url.split("/api/v1/reports/")[1].split("/")[0] for url in whole_range} == set(SPEC_REPORTS)
    # Efficiency over time: one cohort per week of the range.
    assert sum("/efficiency/" in url for url in requested) == 1 + 5
    verdict = page.locator("#chart-velocity [data-verdict]").inner_text()
    assert "MQL decision: median 3.1 days against a 2-day SLA, 31.0 % within SLA." in verdict
    assert "SAL first touch: median 0.6 hours against a 1-hour SLA" in verdict
    assert "bad" in page.locator("#chart-velocity [data-verdict]").get_attribute("class")
    assert page.locator('[data-kpi="mql_to_sql_rate"]').inner_text() == "40.8 %"
    assert page.locator("#per-rep-table tbody tr").count() == 2
    assert "4 leads recycled more than once." in page.locator("#chart-rejections").inner_text()
    screenshot(page, "dashboard-spec-shapes")
    assert page.console_log.errors == []
