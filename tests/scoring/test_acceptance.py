"""Issue 3 acceptance, through the API: the SPEC definition posted, signed, activated."""

from __future__ import annotations

import pytest

from leads.models import Stage, StageTransition
from scoring.models import DefinitionState, QualifiedLeadDefinition
from tests.factories import LeadFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db


def _activate_through_api(marketer, manager, spec_definition) -> dict:
    created = client_for(marketer).post("/api/v1/definitions/", spec_definition, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert client_for(marketer).post(f"/api/v1/definitions/{pk}/sign/").status_code == 200
    assert client_for(manager).post(f"/api/v1/definitions/{pk}/sign/").status_code == 200
    activated = client_for(marketer).post(f"/api/v1/definitions/{pk}/activate/")
    assert activated.status_code == 200, activated.json()
    return activated.json()


def _engaged_events(email: str, prefix: str) -> list[dict]:
    webinars = [{"lead": {"email": email}, "type": "webinar_attended", "event_id": f"{prefix}-w{i}"} for i in range(3)]
    pricing = [
        {"lead": {"email": email}, "type": "page_view", "properties": {"url": "/pricing"}, "event_id": f"{prefix}-p{i}"}
        for i in range(5)
    ]
    return webinars + pricing


def test_spec_definition_scores_a_vp_at_55_fit_70_behavior_and_makes_it_mql(marketer, manager, team, spec_definition):
    body = _activate_through_api(marketer, manager, spec_definition)
    assert body["state"] == DefinitionState.ACTIVE
    lead = LeadFactory(email="ana@acme.example", company="Acme", employees=500, job_title="VP Marketing")
    api = client_for(marketer)

    response = api.post("/api/v1/events/", _engaged_events(lead.email, "ana"), format="json")
    assert response.status_code == 201, response.json()

    lead.refresh_from_db()
    assert lead.fit_score == 55
    assert lead.behavior_score == pytest.approx(70, abs=0.01)
    assert lead.stage == Stage.MQL
    transition = StageTransition.objects.get(lead=lead, to_stage=Stage.MQL)
    assert transition.reason == "score"
    assert transition.definition_version == body["version"]

    again = api.post("/api/v1/events/", _engaged_events(lead.email, "ana"), format="json")
    assert again.json()["duplicates"] == 8
    lead.refresh_from_db()
    assert lead.behavior_score == pytest.approx(70, abs=0.01)
    assert StageTransition.objects.filter(lead=lead).count() == 1


def test_free_mail_lead_with_the_same_facts_is_not_mql_and_its_explanation_names_the_knockout(
    marketer, manager, team, spec_definition
):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="ana@gmail.com", company="Acme", employees=500, job_title="VP Marketing")
    client_for(marketer).post("/api/v1/events/", _engaged_events(lead.email, "gm"), format="json")

    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD
    assert lead.behavior_score == pytest.approx(70, abs=0.01)
    explanation = client_for(marketer).get(f"/api/v1/leads/{lead.pk}/score/").json()
    assert explanation["knockouts_hit"] == ["Free mail"]
    assert explanation["qualifies"] is False
    assert "Knock-out: Free mail." in explanation["why_not"]


def test_a_fit_leads_demo_request_makes_it_mql_at_once(marketer, manager, team, spec_definition):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="bo@acme.example", company="Acme", employees=500, job_title="Head of Growth")
    client_for(marketer).post(
        "/api/v1/events/",
        {"lead": {"id": lead.pk}, "type": "demo_request", "event_id": "demo-1"},
        format="json",
    )
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert lead.behavior_score == 0
    assert StageTransition.objects.get(lead=lead).reason == "hand_raiser"


def test_an_unfit_leads_demo_request_does_not_make_it_mql(marketer, manager, team, spec_definition):
    _activate_through_api(marketer, manager, spec_definition)
    lead = LeadFactory(email="cy@acme.example", company="Acme", employees=20, job_title="Intern")
    client_for(marketer).post(
        "/api/v1/events/", {"lead": {"id": lead.pk}, "type": "demo_request", "event_id": "d"}, format="json"
    )
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD


def test_activation_without_both_signoffs_says_which_is_missing(marketer, manager, spec_definition):
    pk = client_for(marketer).post("/api/v1/definitions/", spec_definition, format="json").json()["id"]
    unsigned = client_for(marketer).post(f"/api/v1/definitions/{pk}/activate/")
    assert unsigned.status_code == 409
    assert unsigned.json()["code"] == "signoff_missing"
    assert "marketing and sales manager" in unsigned.json()["detail"]

    client_for(marketer).post(f"/api/v1/definitions/{pk}/sign/")
    half = client_for(manager).post(f"/api/v1/definitions/{pk}/activate/")
    assert half.status_code == 409
    assert half.json()["detail"].endswith("missing: sales manager.")
    assert QualifiedLeadDefinition.objects.get(pk=pk).state == DefinitionState.DRAFT


def test_rep_reads_definitions_but_cannot_create_sign_or_activate(rep, marketer, spec_definition):
    pk = client_for(marketer).post("/api/v1/definitions/", spec_definition, format="json").json()["id"]
    api = client_for(rep)
    assert api.get("/api/v1/definitions/").status_code == 200
    assert api.get(f"/api/v1/definitions/{pk}/").json()["fit_rules"] == spec_definition["fit_rules"]
    assert api.post("/api/v1/definitions/", spec_definition, format="json").status_code == 403
    assert api.post(f"/api/v1/definitions/{pk}/sign/").status_code == 403
    assert api.post(f"/api/v1/definitions/{pk}/activate/").status_code == 403


def test_sales_manager_cannot_create_a_draft(manager, spec_definition):
    response = client_for(manager).post("/api/v1/definitions/", spec_definition, format="json")
    assert response.status_code == 403
    assert not QualifiedLeadDefinition.objects.exists()


def test_invalid_definition_is_refused_naming_the_field_and_nothing_is_written(marketer, spec_definition):
    spec_definition["fit_rules"][1]["value"] = "(unclosed"
    spec_definition["fit_rules"][0]["value"] = "a hundred"
    response = client_for(marketer).post("/api/v1/definitions/", spec_definition, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "does not compile" in fields["fit_rules[1].value"][0]
    assert "needs a number" in fields["fit_rules[0].value"][0]
    assert not QualifiedLeadDefinition.objects.exists()


def test_rep_gets_404_for_the_score_of_another_reps_lead(rep, rep2, active_spec_definition):
    lead = LeadFactory(owner=rep2, stage=Stage.SAL)
    assert client_for(rep).get(f"/api/v1/leads/{lead.pk}/score/").status_code == 404
    mine = LeadFactory(owner=rep, stage=Stage.SAL)
    assert client_for(rep).get(f"/api/v1/leads/{mine.pk}/score/").json()["fit"]["score"] == 55


def test_activating_a_new_definition_retires_the_old_one(marketer, manager, active_spec_definition, spec_definition):
    body = _activate_through_api(marketer, manager, {**spec_definition, "name": "FY27 Q2"})
    active_spec_definition.refresh_from_db()
    assert active_spec_definition.state == DefinitionState.RETIRED
    assert QualifiedLeadDefinition.objects.get(state=DefinitionState.ACTIVE).pk == body["id"]
    assert body["review_by"] is not None
