"""The browser pages through Django's test client: inbox, lead page, in-place actions, manager
pages. What a rep or manager would notice: which leads they see, the words of an error, the
stage a lead ends up in, a 404 for somebody else's lead."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import Actor
from leads.models import Lead, Stage, StageTransition, TeamMembership, Touch
from sla.models import BreachAction, BusinessCalendar, SlaBreach, SlaPolicy
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def policies(db):
    """Plain elapsed-time clocks, so deadlines in these tests do not depend on the weekday."""
    calendar = BusinessCalendar.objects.create(name="Always")
    common = {"calendar": calendar, "business_time": False, "warning_share": 0.75}
    return {
        "mql": SlaPolicy.objects.create(
            name="Accept or reject",
            stage=Stage.MQL,
            clock="mql_decision",
            duration_hours=48,
            breach_action=BreachAction.NOTIFY,
            **common,
        ),
        "first_touch": SlaPolicy.objects.create(
            name="First touch", stage=Stage.SAL, clock="sal_first_touch", duration_hours=1, **common
        ),
        "min_touches": SlaPolicy.objects.create(
            name="Minimum touches",
            stage=Stage.SAL,
            clock="sal_min_touches",
            duration_hours=336,
            min_calls=3,
            min_emails=3,
            window_days=14,
            **common,
        ),
        "qualify": SlaPolicy.objects.create(
            name="Qualify or drop",
            stage=Stage.SAL,
            clock="sal_qualify",
            duration_hours=336,
            bant_required=4,
            **common,
        ),
    }


def make_mql(*, team, owner=None, hours_ago: float = 1, due_in: float | None = 47, **kwargs) -> Lead:
    """An MQL as promotion leaves it: in a team, maybe owned, with its decision clock running."""
    now = timezone.now()
    return LeadFactory(
        stage=Stage.MQL,
        team=team,
        owner=owner,
        stage_entered_at=now - dt.timedelta(hours=hours_ago),
        sla_clock="mql_decision" if due_in is not None else "",
        sla_due_at=now + dt.timedelta(hours=due_in) if due_in is not None else None,
        **kwargs,
    )


def login(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def rep_client(client, rep):
    return login(client, rep)


# --- Home -----------------------------------------------------------------------------------


def test_root_sends_reps_to_the_inbox_and_managers_and_marketers_to_the_dashboard(client, rep, manager, marketer):
    assert client.get("/").url.startswith(reverse("login"))
    for user, home in ((rep, "/inbox/"), (manager, "/dashboard/"), (marketer, "/dashboard/")):
        login(client, user)
        assert client.get("/").url == home


def test_login_page_logs_a_rep_in_and_lands_on_the_inbox(client, rep):
    page = client.get(reverse("login"))
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "rep1", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == "/inbox/"


# --- Inbox ----------------------------------------------------------------------------------


def test_inbox_shows_my_mqls_and_sals_and_my_teams_unassigned_mqls_soonest_deadline_first(
    rep_client, rep, rep2, team, policies
):
    other_team = TeamFactory(name="EMEA", territories=["DE"])
    later = make_mql(team=team, owner=rep, due_in=30, last_name="Later")
    sooner = make_mql(team=team, owner=rep, due_in=2, last_name="Sooner")
    unassigned = make_mql(team=team, owner=None, due_in=10, last_name="Unclaimed")
    sal = LeadFactory(
        stage=Stage.SAL,
        team=team,
        owner=rep,
        last_name="Accepted",
        sla_due_at=timezone.now() + dt.timedelta(hours=20),
        sla_clock="sal_qualify",
    )
    not_mine = [
        make_mql(team=team, owner=rep2, due_in=1, last_name="Rep2s"),
        make_mql(team=other_team, owner=None, due_in=1, last_name="OtherTeam"),
        LeadFactory(stage=Stage.RECYCLED, owner=None, team=team, last_name="Recycled"),
    ]

    response = rep_client.get("/inbox/")

    assert response.status_code == 200
    rows = [lead.pk for lead in response.context["page"].object_list]
    assert rows == [sooner.pk, unassigned.pk, sal.pk, later.pk]
    html = response.content.decode()
    assert all(f"lead-row-{lead.pk}" not in html for lead in not_mine)
    assert "team, unassigned" in html


def test_inbox_colours_the_countdown_green_then_amber_past_the_warning_share_then_red(rep_client, rep, team, policies):
    # 48 h clock, warning at 75 % = 36 h after entry.
    fresh = make_mql(team=team, owner=rep, hours_ago=1, due_in=47)
    warned = make_mql(team=team, owner=rep, hours_ago=40, due_in=8)
    late = make_mql(team=team, owner=rep, hours_ago=50, due_in=-2)
    # The warning point stored by the write path wins over the page's own arithmetic.
    stored = make_mql(
        team=team, owner=rep, hours_ago=1, due_in=47, sla_warn_at=timezone.now() - dt.timedelta(minutes=1)
    )

    html = rep_client.get("/inbox/").content.decode()

    def sla_class(lead):
        row = html.split(f'id="lead-row-{lead.pk}"')[1].split("</tr>")[0]
        return row.split('class="sla sla-')[1].split('"')[0]

    assert sla_class(fresh) == "ok"
    assert sla_class(warned) == "warning"
    assert sla_class(late) == "breached"
    assert sla_class(stored) == "warning"
    assert "overdue 2h" in html
    assert "1d 22h left" in html or "1d 23h left" in html


def test_inbox_filters_by_stage_and_source_and_paginates(rep_client, rep, team, policies):
    for i in range(30):
        make_mql(team=team, owner=rep, due_in=i + 1, source="webinar")
    make_mql(team=team, owner=rep, due_in=100, source="ads")
    LeadFactory(stage=Stage.SAL, team=team, owner=rep, source="ads")

    first = rep_client.get("/inbox/")
    assert first.context["page"].paginator.count == 32
    assert len(first.context["page"].object_list) == 25
    assert 'rel="next"' in first.content.decode()
    second = rep_client.get("/inbox/?page=2")
    assert len(second.context["page"].object_list) == 7

    ads = rep_client.get("/inbox/?source=ads")
    assert {lead.source for lead in ads.context["page"].object_list} == {"ads"}
    assert ads.context["page"].paginator.count == 2
    sal_only = rep_client.get("/inbox/?stage=sal")
    assert [lead.stage for lead in sal_only.context["page"].object_list] == [Stage.SAL]


def test_inbox_queries_do_not_grow_with_the_number_of_rows(
    rep_client, rep, team, policies, django_assert_max_num_queries
):
    for i in range(5):
        make_mql(team=team, owner=rep, due_in=i + 1)
    with django_assert_max_num_queries(12) as few:
        rep_client.get("/inbox/")
    for i in range(20):
        make_mql(team=team, owner=rep, due_in=i + 10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        rep_client.get("/inbox/")


# --- Accept and reject in place ---------------------------------------------------------------


def test_rep_accepts_an_mql_in_place_and_gets_its_row_back_as_a_sal(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=None)

    response = rep_client.post(f"/leads/{lead.pk}/accept/", {"surface": "row"}, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="lead-row-{lead.pk}"')
    assert 'data-stage="sal"' in html and ">SAL<" in html
    assert "Accepted" in html
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL and lead.owner == rep
    transition = StageTransition.objects.get(lead=lead, to_stage=Stage.SAL)
    assert transition.actor == rep and transition.actor_type == "user"


def test_a_rep_who_clicks_accept_after_a_teammate_reads_who_took_the_lead(client, rep, rep2, team, policies):
    # Everyone away at promotion: the MQL lands unassigned in the team, in both reps' inboxes.
    TeamMembership.objects.filter(team=team).update(is_away=True)
    lead = LeadFactory(country="US")
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM)
    TeamMembership.objects.filter(team=team).update(is_away=False)
    assert lead.owner is None
    lifecycle.accept(lead, actor=Actor.person(rep2))

    response = login(client, rep).post(f"/leads/{lead.pk}/accept/", {"surface": "row"}, **HTMX)

    assert response.status_code == 409
    assert "rep2 accepted this lead first" in response.content.decode()
    assert ">Accept<" not in response.content.decode()
    lead.refresh_from_db()
    assert lead.owner == rep2


def test_accepting_a_lead_already_accepted_explains_the_stage_in_words(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))

    response = rep_client.post(f"/leads/{lead.pk}/accept/", {"surface": "row"}, **HTMX)

    assert response.status_code == 409
    assert "it is in stage &#x27;sal&#x27;" in response.content.decode()


def test_reject_needs_a_reason_and_says_so_without_changing_the_lead(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)

    response = rep_client.post(f"/leads/{lead.pk}/reject/", {"surface": "row", "reason": ""}, **HTMX)

    assert response.status_code == 400
    assert "Reason: This field is required." in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert not StageTransition.objects.filter(lead=lead).exists()


def test_rejecting_with_a_recycle_reason_recycles_and_with_a_disqualify_reason_disqualifies(
    rep_client, rep, team, policies
):
    recycled = make_mql(team=team, owner=rep)
    spam = make_mql(team=team, owner=rep)

    first = rep_client.post(
        f"/leads/{recycled.pk}/reject/", {"surface": "row", "reason": "bad_timing", "note": "Q3"}, **HTMX
    )
    second = rep_client.post(f"/leads/{spam.pk}/reject/", {"surface": "row", "reason": "spam"}, **HTMX)

    assert first.status_code == 200 and "now recycled" in first.content.decode()
    assert "gone" in first.content.decode().split(">")[0]
    assert second.status_code == 200 and "now disqualified" in second.content.decode()
    recycled.refresh_from_db()
    spam.refresh_from_db()
    assert (recycled.stage, recycled.owner) == (Stage.RECYCLED, None)
    assert spam.stage == Stage.DISQUALIFIED
    assert StageTransition.objects.get(lead=recycled, to_stage=Stage.RECYCLED).note == "Q3"
    assert recycled.pk not in [lead.pk for lead in rep_client.get("/inbox/").context["page"].object_list]


def test_without_javascript_accept_posts_normally_and_redirects_back_with_a_message(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)

    response = rep_client.post(f"/leads/{lead.pk}/accept/", {"next": "/inbox/"}, follow=True)

    assert response.redirect_chain == [("/inbox/", 302)]
    assert "Accepted: the lead is now a SAL" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


def test_an_offsite_next_is_ignored_after_an_action(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    response = rep_client.post(f"/leads/{lead.pk}/accept/", {"next": "https://evil.example/"})
    assert response.url == f"/leads/{lead.pk}/"


def test_posts_without_a_csrf_token_are_refused(rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    client = login(Client(enforce_csrf_checks=True), rep)

    response = client.post(f"/leads/{lead.pk}/accept/", {"surface": "row"}, **HTMX)

    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_the_csrf_token_rides_on_every_htmx_request(rep_client, rep, team, policies):
    make_mql(team=team, owner=rep)
    html = rep_client.get("/inbox/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


# --- Permissions ----------------------------------------------------------------------------


def test_another_reps_lead_answers_404_on_the_page_and_on_every_action(client, rep, rep2, team, policies):
    lead = make_mql(team=team, owner=rep)
    login(client, rep2)

    assert client.get(f"/leads/{lead.pk}/").status_code == 404
    for action in ("touches", "reassign", "qualify", "recycle"):
        assert client.post(f"/leads/{lead.pk}/{action}/", {}).status_code == 404, action
    outsider = make_user("outsider", "sales_rep")
    login(client, outsider)
    assert client.post(f"/leads/{lead.pk}/accept/", {"surface": "row"}, **HTMX).status_code == 404
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_a_marketer_reads_a_lead_but_is_offered_no_sales_action_and_is_refused_one(
    client, marketer, rep, team, policies
):
    lead = make_mql(team=team, owner=rep)
    login(client, marketer)

    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Accept (→ SAL)" not in page and "Log touch" not in page

    response = client.post(f"/leads/{lead.pk}/accept/", **HTMX)
    assert response.status_code == 403
    assert "may not accept" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_a_rep_is_not_shown_the_dashboard_or_manager_pages(rep_client):
    assert rep_client.get("/dashboard/").status_code == 403
    assert rep_client.get("/manager/breaches/").status_code == 403
    assert rep_client.get("/manager/team/").status_code == 403


# --- Lead page ------------------------------------------------------------------------------


def test_lead_page_shows_profile_scores_and_a_timeline_of_transitions_touches_events_and_breaches(
    rep_client, rep, team, policies
):
    lead = make_mql(team=team, owner=rep, company="Globex", job_title="VP Sales", fit_score=80, behavior_score=45)
    lead.events.create(type="webinar_attended", event_id="e-1", properties={"title": "Scale"})
    lifecycle.accept(lead, actor=Actor.person(rep), note="Looks great")
    lifecycle.log_touch(lead, actor=Actor.person(rep), kind="call", outcome="voicemail", note="left msg")
    SlaBreach.objects.create(
        lead=lead,
        policy=policies["first_touch"],
        clock="sal_first_touch",
        stage=Stage.SAL,
        owner=rep,
        due_at=timezone.now(),
        action="notify",
    )

    response = rep_client.get(f"/leads/{lead.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Globex" in html and "VP Sales" in html
    assert "grade grade-A" in html
    kinds = [entry.kind for entry in response.context["timeline"]]
    assert {"transition", "touch", "event", "breach"} <= set(kinds)
    assert "MQL → SAL" in html and "by rep1" in html and "Looks great" in html
    assert "Call — Voicemail" in html and "left msg" in html
    assert "SLA breached: SAL: first touch" in html
    assert "webinar attended" in html


def test_logging_touches_counts_down_the_minimum_before_unable_to_reach(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))

    refused = rep_client.post(f"/leads/{lead.pk}/recycle/", {"reason": "unable_to_reach"}, **HTMX)
    assert refused.status_code == 409
    assert "0 of 3 calls logged; 0 of 3 emails logged" in refused.content.decode()

    for kind in ("call", "call", "call", "email", "email", "email"):
        response = rep_client.post(f"/leads/{lead.pk}/touches/", {"kind": kind, "outcome": "no_answer"}, **HTMX)
        assert response.status_code == 200
    assert "Minimum touches met." in response.content.decode()
    assert Touch.objects.filter(lead=lead).count() == 6

    done = rep_client.post(f"/leads/{lead.pk}/recycle/", {"reason": "unable_to_reach"}, **HTMX)
    assert done.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.RECYCLED
    assert "no longer in your reach" in done.content.decode()


def test_the_first_touch_stops_the_speed_to_lead_clock(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))
    lead.refresh_from_db()

    rep_client.post(f"/leads/{lead.pk}/touches/", {"kind": "email", "outcome": "replied"}, **HTMX)

    lead.refresh_from_db()
    # Speed to lead is met; the minimum touches (due with qualify-or-drop) run on.
    assert lead.sla_clock == "sal_min_touches" and lead.first_touch_at is not None


def test_touch_with_an_unknown_kind_is_refused_naming_the_field(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    response = rep_client.post(f"/leads/{lead.pk}/touches/", {"kind": "fax", "outcome": "no_answer"}, **HTMX)
    assert response.status_code == 400
    assert "Kind: Select a valid choice." in response.content.decode()
    assert not Touch.objects.filter(lead=lead).exists()


def test_qualifying_with_full_bant_makes_a_sql_and_the_timeline_shows_it(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))
    page = rep_client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="bant-form"' in page

    bant = dict.fromkeys(("budget", "authority", "need", "timeline"), "yes")
    response = rep_client.post(
        f"/leads/{lead.pk}/qualify/", {**bant, "budget_note": "50k approved", "note": "demo booked"}, **HTMX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "SAL → SQL" in html and "budget yes (50k approved)" in html
    assert 'id="bant-form"' not in html
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL


def test_incomplete_bant_is_refused_in_words_and_the_answers_stay_in_the_form(rep_client, rep, team, policies):
    lead = make_mql(team=team, owner=rep)
    lifecycle.accept(lead, actor=Actor.person(rep))

    response = rep_client.post(
        f"/leads/{lead.pk}/qualify/",
        {"budget": "yes", "authority": "no", "need": "yes", "timeline": "yes"},
        **HTMX,
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "Qualification needs 4 of budget, authority, need and timeline" in html
    assert re.search(r'value="no" id="bant-authority_1"[^>]*checked', html)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


def test_score_section_falls_back_to_a_plain_summary_without_the_scoring_explanation(
    rep_client, rep, team, policies, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "scoring.services", None)  # import raises ImportError
    lead = make_mql(team=team, owner=rep, fit_score=62, behavior_score=41)
    html = rep_client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Fit 62 / 100 (grade B), behavior 41 / 100" in html


# --- Manager actions ---------------------------------------------------------------------------


def test_manager_reassigns_a_lead_to_another_rep_and_the_timeline_records_it(
    client, manager, rep, rep2, team, policies
):
    lead = make_mql(team=team, owner=rep)
    login(client, manager)
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="reassign-form"' in page

    response = client.post(f"/leads/{lead.pk}/reassign/", {"owner": rep2.pk, "note": "rep1 on leave"}, **HTMX)

    assert response.status_code == 200
    assert "Reassigned to rep2" in response.content.decode()
    lead.refresh_from_db()
    assert lead.owner == rep2 and lead.stage == Stage.MQL
    row = StageTransition.objects.get(lead=lead, reason="reassigned")
    assert row.actor == manager and row.note == "rep1 on leave"


def test_a_rep_is_offered_no_reassignment_and_cannot_post_one(rep_client, rep, rep2, team, policies):
    lead = make_mql(team=team, owner=rep)
    assert 'id="reassign-form"' not in rep_client.get(f"/leads/{lead.pk}/").content.decode()
    response = rep_client.post(f"/leads/{lead.pk}/reassign/", {"owner": rep2.pk}, **HTMX)
    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.owner == rep


def test_manager_marks_a_rep_away_and_new_mqls_skip_them(client, manager, rep, rep2, team, policies):
    membership = TeamMembership.objects.get(team=team, user=rep)
    login(client, manager)
    assert "Mark away" in client.get("/manager/team/").content.decode()

    response = client.post(f"/manager/team/members/{membership.pk}/away/", {"is_away": "1"}, **HTMX)

    assert response.status_code == 200 and "rep1 is away" in response.content.decode()
    membership.refresh_from_db()
    assert membership.is_away
    owners = set()
    for _ in range(3):
        lead = LeadFactory(country="US")
        lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM)
        owners.add(lead.owner)
    assert owners == {rep2}


def test_a_rep_cannot_mark_anyone_away(rep_client, rep, team):
    membership = TeamMembership.objects.get(team=team, user=rep)
    assert rep_client.post(f"/manager/team/members/{membership.pk}/away/", {"is_away": "1"}).status_code == 403
    membership.refresh_from_db()
    assert not membership.is_away


def test_breaches_page_lists_the_last_seven_days_of_breaches_and_not_older_ones(client, manager, rep, team, policies):
    recent = make_mql(team=team, owner=rep, last_name="Recentbreach")
    old = make_mql(team=team, owner=rep, last_name="Oldbreach")
    now = timezone.now()
    SlaBreach.objects.create(
        lead=recent,
        policy=policies["mql"],
        clock="mql_decision",
        stage=Stage.MQL,
        owner=rep,
        due_at=now - dt.timedelta(minutes=5),
        detected_at=now,
        action="notify",
    )
    SlaBreach.objects.create(
        lead=old,
        policy=policies["mql"],
        clock="mql_decision",
        stage=Stage.MQL,
        owner=rep,
        due_at=now - dt.timedelta(days=9),
        detected_at=now - dt.timedelta(days=8),
        action="notify",
    )

    html = login(client, manager).get("/manager/breaches/").content.decode()

    assert "Recentbreach" in html and "Oldbreach" not in html
    assert "Notify owner and manager only" in html


def test_dashboard_is_served_to_managers_and_marketers_with_a_csv_link_per_chart(client, manager, marketer):
    for user in (manager, marketer):
        response = login(client, user).get("/dashboard/?date_from=2026-01-01&date_to=2026-03-31&country=us")
        assert response.status_code == 200
        html = response.content.decode()
        for report in ("funnel", "efficiency", "velocity", "rejections", "commitment"):
            assert f'data-endpoint="/api/v1/reports/{report}/"' in html
            assert (
                f"/api/v1/reports/{report}/?from=2026-01-01&amp;to=2026-03-31&amp;country=US&amp;lang=en&amp;format=csv"
                in html
            )
        assert "chart-4.6.1.umd.min.js" in html


def test_dashboard_refuses_an_end_date_before_the_start_in_words(client, manager):
    response = login(client, manager).get("/dashboard/?date_from=2026-03-01&date_to=2026-01-01")
    assert response.status_code == 200
    assert "The end date must be on or after the start date." in response.content.decode()


def test_a_marketer_promotes_a_lead_by_hand_only_with_a_note(client, marketer, rep, rep2, team, policies):
    lead = LeadFactory(country="US", stage=Stage.LEAD)
    login(client, marketer)
    assert 'id="promote-form"' in client.get(f"/leads/{lead.pk}/").content.decode()

    refused = client.post(f"/leads/{lead.pk}/promote/", {"note": ""}, **HTMX)
    assert refused.status_code == 400 and "Note: This field is required." in refused.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD

    done = client.post(f"/leads/{lead.pk}/promote/", {"note": "Met at the trade show"}, **HTMX)
    assert done.status_code == 200 and "Promoted to MQL and assigned to" in done.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and lead.owner in (rep, rep2)
    row = StageTransition.objects.get(lead=lead, to_stage=Stage.MQL)
    assert (row.reason, row.note, row.actor) == ("manual", "Met at the trade show", marketer)


def test_a_rep_is_not_offered_manual_promotion(client, manager, rep, team, policies):
    lead = LeadFactory(country="US", stage=Stage.LEAD, owner=rep)
    login(client, rep)
    assert 'id="promote-form"' not in client.get(f"/leads/{lead.pk}/").content.decode()
    assert client.post(f"/leads/{lead.pk}/promote/", {"note": "x"}, **HTMX).status_code == 403


def test_logging_out_ends_the_session_and_returns_to_the_login_page(rep_client):
    response = rep_client.post(reverse("logout"))
    assert response.url == reverse("login")
    assert rep_client.get("/inbox/").url.startswith(reverse("login"))


def test_a_refused_page_says_why_in_the_sites_layout(rep_client):
    response = rep_client.get("/dashboard/")
    assert response.status_code == 403
    assert "The dashboard is for sales managers and marketing." in response.content.decode()
    assert "LeadFlow" in response.content.decode()


def test_inbox_pages_merged_from_index_ordered_branches_match_the_plain_query(rep, team, policies):
    from leads import selectors

    second_team = TeamFactory(name="LATAM", territories=["BR"])
    add_rep(second_team, rep)
    now = timezone.now()
    for i in range(12):
        make_mql(team=team, owner=rep, due_in=(i * 7) % 30 - 5)
        make_mql(team=team, owner=None, due_in=(i * 5) % 30 - 5)
        make_mql(team=second_team, owner=None, due_in=(i * 3) % 30 - 5)
        LeadFactory(
            stage=Stage.SAL, team=team, owner=rep, sla_due_at=now + dt.timedelta(hours=(i * 11) % 30) if i % 4 else None
        )

    query = selectors.inbox_query(rep)
    plain = [lead.pk for lead in selectors.inbox_leads(rep)]

    assert query.count() == len(plain) == 48
    assert len(query.branches) == 4
    merged = [lead.pk for start in range(0, 50, 10) for lead in query[start : start + 10]]
    assert merged == plain
    assert query[48:60] == []
    sal_only = selectors.inbox_query(rep, stage=Stage.SAL)
    assert [lead.pk for lead in sal_only[0:20]] == [lead.pk for lead in selectors.inbox_leads(rep, stage=Stage.SAL)]
