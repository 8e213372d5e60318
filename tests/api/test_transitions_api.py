from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from leads.models import ActorType, Lead, SlaClock, Stage, StageTransition, Touch, WebhookSubscription
from scoring.models import DefinitionState, QualifiedLeadDefinition
from sla.models import BusinessCalendar, SlaPolicy
from tests.factories import EventFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_owner_accepts_mql_and_audit_row_says_api(as_rep, mql_lead):
    response = as_rep.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {"note": "on it"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == "sal"
    row = StageTransition.objects.get(lead=mql_lead, to_stage=Stage.SAL)
    assert row.actor_type == ActorType.API and row.note == "on it"


def test_accepting_twice_is_409_naming_current_stage_and_allowed_moves(as_rep, mql_lead):
    as_rep.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {}, format="json")
    response = as_rep.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert body["current_stage"] == "sal"
    assert "qualify" in body["allowed_moves"]


def test_rep_cannot_accept_lead_owned_by_another_rep(as_rep2, mql_lead):
    response = as_rep2.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {}, format="json")
    assert response.status_code == 404  # not even visible to rep2
    mql_lead.refresh_from_db()
    assert mql_lead.stage == Stage.MQL


def test_marketer_sees_lead_but_may_not_accept_it(as_marketer, mql_lead):
    response = as_marketer.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_reject_needs_a_known_reason(as_rep, mql_lead):
    response = as_rep.post(f"/api/v1/leads/{mql_lead.pk}/reject/", {"reason": "meh"}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["fields"]
    ok = as_rep.post(f"/api/v1/leads/{mql_lead.pk}/reject/", {"reason": "no_budget"}, format="json")
    assert ok.status_code == 200 and ok.json()["stage"] == "recycled"


def test_reject_as_spam_disqualifies(as_rep, mql_lead):
    response = as_rep.post(f"/api/v1/leads/{mql_lead.pk}/reject/", {"reason": "spam"}, format="json")
    assert response.json()["stage"] == "disqualified"


def test_qualify_needs_all_four_bant_answers_yes(as_rep, rep, team):
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    missing = as_rep.post(f"/api/v1/leads/{lead.pk}/qualify/", {"budget": True}, format="json")
    assert missing.status_code == 400 and "bant" in missing.json()["fields"]
    one_no = as_rep.post(
        f"/api/v1/leads/{lead.pk}/qualify/",
        {"bant": {"budget": True, "authority": True, "need": True, "timeline": False}},
        format="json",
    )
    assert one_no.status_code == 400 and one_no.json()["code"] == "bant_required"
    ok = as_rep.post(
        f"/api/v1/leads/{lead.pk}/qualify/",
        {"budget": True, "authority": True, "need": {"value": True, "note": "pain"}, "timeline": True},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["stage"] == "sql"


def test_manager_closes_sql_as_won_and_rep_may_not(as_manager, as_rep, rep, team):
    lead = LeadFactory(stage=Stage.SQL, owner=rep, team=team)
    assert as_rep.post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "won"}, format="json").status_code == 403
    bad = as_manager.post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "maybe"}, format="json")
    assert bad.status_code == 400 and "outcome" in bad.json()["fields"]
    ok = as_manager.post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "won"}, format="json")
    assert ok.status_code == 200 and ok.json()["stage"] == "won"


def test_recycle_and_disqualify_a_sal(as_rep, rep, team):
    first = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    second = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    recycled = as_rep.post(f"/api/v1/leads/{first.pk}/recycle/", {"reason": "bad_timing"}, format="json")
    assert recycled.status_code == 200 and recycled.json()["stage"] == "recycled"
    dq = as_rep.post(f"/api/v1/leads/{second.pk}/disqualify/", {"reason": "competitor"}, format="json")
    assert dq.status_code == 200 and dq.json()["stage"] == "disqualified"


def test_log_touch_validates_kind_and_records_it(as_rep, rep, team):
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    bad = as_rep.post(f"/api/v1/leads/{lead.pk}/touches/", {"kind": "fax", "outcome": "connected"}, format="json")
    assert bad.status_code == 400 and "kind" in bad.json()["fields"]
    ok = as_rep.post(f"/api/v1/leads/{lead.pk}/touches/", {"kind": "call", "outcome": "no_answer"}, format="json")
    assert ok.status_code == 201
    assert Touch.objects.filter(lead=lead, kind="call", user=rep).exists()
    lead.refresh_from_db()
    assert lead.first_touch_at is not None


def test_history_lists_transitions_touches_and_events(as_rep, mql_lead):
    EventFactory(lead=mql_lead, type="webinar_attended")
    as_rep.post(f"/api/v1/leads/{mql_lead.pk}/accept/", {}, format="json")
    as_rep.post(f"/api/v1/leads/{mql_lead.pk}/touches/", {"kind": "email", "outcome": "replied"}, format="json")
    body = as_rep.get(f"/api/v1/leads/{mql_lead.pk}/history/").json()
    assert [t["to_stage"] for t in body["transitions"]] == ["sal"]
    assert body["touches"][0]["kind"] == "email"
    assert body["events"][0]["type"] == "webinar_attended"
    assert body["sla_breaches"] == []


def test_accept_answers_with_the_lead_as_it_now_reads(as_rep2, rep2, team):
    unassigned = LeadFactory(stage=Stage.MQL, owner=None, team=team)
    response = as_rep2.post(f"/api/v1/leads/{unassigned.pk}/accept/", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["owner"] == rep2.username and body["team"] == team.name
    detail = as_rep2.get(f"/api/v1/leads/{unassigned.pk}/").json()
    detail.pop("sla_clocks")  # the one-lead read adds the clocks
    assert body == detail


def test_reject_answers_with_the_lead_as_it_now_reads(as_manager, rep, team):
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    response = as_manager.post(f"/api/v1/leads/{lead.pk}/reject/", {"reason": "no_need"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["owner"] is None
    detail = as_manager.get(f"/api/v1/leads/{lead.pk}/").json()
    detail.pop("sla_clocks")  # the one-lead read adds the clocks
    assert response.json() == detail


def test_an_accept_with_policies_definition_and_a_webhook_stays_within_its_queries(
    as_rep, rep, team, django_assert_max_num_queries
):
    """Token, roles, the visible lead, lock, rules, update, audit row, subscriptions, outbox
    row (and the savepoint pair of the test's transaction). PostgreSQL reads the definition's
    version and the policies' row versions in one query."""
    _policy(SlaClock.SAL_QUALIFY, hours=24)
    QualifiedLeadDefinition.objects.create(name="Active", state=DefinitionState.ACTIVE)
    WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", events=["lead.sal"])
    warm, lead = (LeadFactory(stage=Stage.MQL, owner=rep, team=team) for _ in range(2))
    as_rep.post(f"/api/v1/leads/{warm.pk}/accept/", {}, format="json")
    with django_assert_max_num_queries(11 if connection.vendor == "postgresql" else 12):
        response = as_rep.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json")
    assert response.status_code == 200


# --- Edits by admins count from the next move on (rules may be kept per process) ---------------


def _policy(clock: str, *, hours: float, business_time: bool = False) -> SlaPolicy:
    calendar = BusinessCalendar.objects.create(name=f"Calendar for {clock}", working_days=[0, 1, 2, 3, 4, 5, 6])
    return SlaPolicy.objects.create(
        name=clock,
        stage=Stage.SAL,
        clock=clock,
        calendar=calendar,
        duration_hours=hours,
        business_time=business_time,
    )


def _accepted(client, rep, team) -> Lead:
    lead = LeadFactory(stage=Stage.MQL, owner=rep, team=team)
    response = client.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json")
    assert response.status_code == 200, response.content
    return Lead.objects.get(pk=lead.pk)


def _clock_length(lead: Lead) -> dt.timedelta | None:
    return None if lead.sla_due_at is None else lead.sla_due_at - lead.stage_entered_at


def test_an_edited_sla_policy_sets_the_deadline_of_the_next_accepted_lead(as_rep, rep, team):
    policy = _policy(SlaClock.SAL_QUALIFY, hours=24)
    assert _clock_length(_accepted(as_rep, rep, team)) == dt.timedelta(hours=24)

    policy.duration_hours = 48
    policy.save()  # as the admin's change form does
    assert _clock_length(_accepted(as_rep, rep, team)) == dt.timedelta(hours=48)

    SlaPolicy.objects.filter(pk=policy.pk).update(active=False)  # a bulk edit sends no signal
    assert _clock_length(_accepted(as_rep, rep, team)) is None

    SlaPolicy.objects.filter(pk=policy.pk).update(active=True, duration_hours=8)
    assert _clock_length(_accepted(as_rep, rep, team)) == dt.timedelta(hours=8)

    # Speed to lead runs from MQL entry: accepting an MQL that entered without it starts none.
    _policy(SlaClock.SAL_FIRST_TOUCH, hours=2)
    lead = _accepted(as_rep, rep, team)
    assert (lead.sla_clock, _clock_length(lead)) == (SlaClock.SAL_QUALIFY, dt.timedelta(hours=8))

    SlaPolicy.objects.filter(clock=SlaClock.SAL_FIRST_TOUCH).delete()
    lead = _accepted(as_rep, rep, team)
    assert (lead.sla_clock, _clock_length(lead)) == (SlaClock.SAL_QUALIFY, dt.timedelta(hours=8))


def test_an_edited_business_calendar_sets_the_deadline_of_the_next_accepted_lead(as_rep, rep, team):
    policy = _policy(SlaClock.SAL_QUALIFY, hours=6, business_time=True)
    before = SlaPolicy.objects.select_related("calendar").get(pk=policy.pk)
    first = _accepted(as_rep, rep, team)
    assert first.sla_due_at == before.due_from(first.stage_entered_at)

    BusinessCalendar.objects.filter(pk=policy.calendar_id).update(work_start=dt.time(0, 0), work_end=dt.time(1, 0))
    after = SlaPolicy.objects.select_related("calendar").get(pk=policy.pk)
    second = _accepted(as_rep, rep, team)
    assert second.sla_due_at == after.due_from(second.stage_entered_at)
    assert second.sla_due_at != before.due_from(second.stage_entered_at)


def test_the_audit_row_names_the_definition_active_at_the_time_of_the_move(as_rep, rep, team):
    first = QualifiedLeadDefinition.objects.create(name="First", state=DefinitionState.ACTIVE)
    lead = _accepted(as_rep, rep, team)
    assert StageTransition.objects.get(lead=lead).definition_version == first.version

    second = QualifiedLeadDefinition.objects.create(name="Second")
    QualifiedLeadDefinition.objects.filter(pk=first.pk).update(state=DefinitionState.RETIRED)
    QualifiedLeadDefinition.objects.filter(pk=second.pk).update(state=DefinitionState.ACTIVE)
    lead = _accepted(as_rep, rep, team)
    assert StageTransition.objects.get(lead=lead).definition_version == second.version

    QualifiedLeadDefinition.objects.filter(pk=second.pk).update(state=DefinitionState.RETIRED)
    lead = _accepted(as_rep, rep, team)
    assert StageTransition.objects.get(lead=lead).definition_version is None
