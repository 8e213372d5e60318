from __future__ import annotations

import pytest

from leads.models import ActorType, Stage, StageTransition, Touch
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
        {"bant": {"budget": True, "authority": True, "need": True, "timeline": False}}, format="json",
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
