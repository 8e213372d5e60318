"""Issue 21 point 1: a lead is identified by external id, e-mail or phone (E.164), may carry
social profile URLs, and upserts match in the documented order (external_id, email, phone)."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from leads.forms import LeadIdentityForm
from leads.models import Lead
from leads.services.importer import import_leads
from leads.services.upsert import bulk_upsert
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    return client


def test_a_lead_can_be_created_with_only_an_external_id(api):
    response = api.post("/api/v1/leads/", {"external_id": "crm-7", "company": "Acme"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] is None
    assert Lead.objects.get(external_id="crm-7").email is None


def test_creating_a_lead_without_any_identifier_is_a_400_naming_the_identifiers(api):
    response = api.post("/api/v1/leads/", {"company": "Acme"}, format="json")
    assert response.status_code == 400
    assert {"external_id", "email", "phone"} <= set(response.json()["fields"])
    assert Lead.objects.count() == 0


def test_phone_is_stored_in_e164_and_validated_for_the_country(api):
    created = api.post("/api/v1/leads/", {"phone": "(415) 555-0132", "country": "us"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["phone"] == "+14155550132"
    bad = api.post("/api/v1/leads/", {"phone": "12345", "country": "US"}, format="json")
    assert bad.status_code == 400 and "phone" in bad.json()["fields"]
    no_country = api.post("/api/v1/leads/", {"phone": "020 7946 0000"}, format="json")
    assert no_country.status_code == 400 and "phone" in no_country.json()["fields"]


def test_social_profiles_must_be_http_urls(api):
    ok = api.post(
        "/api/v1/leads/",
        {"email": "s@example.com", "social_profiles": ["https://www.linkedin.com/in/ana"]},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["social_profiles"] == ["https://www.linkedin.com/in/ana"]
    bad = api.post(
        "/api/v1/leads/", {"email": "t@example.com", "social_profiles": ["javascript:alert(1)"]}, format="json"
    )
    assert bad.status_code == 400 and "social_profiles" in bad.json()["fields"]


def test_a_bulk_upsert_repeating_an_email_within_one_batch_reports_one_lead():
    rows = [{"email": "rep@example.com", "company": name} for name in ("A", "B", "C")]
    result = bulk_upsert(rows)
    assert (result["leads"], result["created"], result["updated"], result["errors"]) == (1, 1, 0, 0)
    assert {r["id"] for r in result["results"]} == {Lead.objects.get().pk}
    assert [r.get("repeat_of") for r in result["results"]] == [None, 0, 0]
    assert Lead.objects.get().company == "C"


def test_a_bulk_upsert_repeating_a_lead_by_different_identifiers_reports_one_lead():
    rows = [
        {"external_id": "x-1", "email": "x@example.com"},
        {"email": "x@example.com", "phone": "+442079460000"},
        {"phone": "+44 20 7946 0000", "company": "Acme"},
    ]
    result = bulk_upsert(rows)
    assert (result["leads"], result["created"]) == (1, 1)
    lead = Lead.objects.get()
    assert (lead.external_id, lead.email, lead.phone, lead.company) == ("x-1", "x@example.com", "+442079460000", "Acme")


def test_upsert_matches_external_id_then_email_then_phone():
    by_ext = LeadFactory(external_id="e-1", email="one@example.com", phone="")
    by_email = LeadFactory(email="two@example.com", phone="")
    by_phone = LeadFactory(email="three@example.com", phone="+14155550132")
    result = bulk_upsert(
        [
            {"external_id": "e-1", "company": "By ext"},
            {"email": "two@example.com", "company": "By email"},
            {"phone": "+1 415 555 0132", "company": "By phone"},
        ]
    )
    assert (result["created"], result["updated"]) == (0, 3)
    assert [Lead.objects.get(pk=lead.pk).company for lead in (by_ext, by_email, by_phone)] == [
        "By ext",
        "By email",
        "By phone",
    ]


def test_upsert_refuses_an_email_another_lead_holds_for_an_external_id():
    LeadFactory(external_id="e-1", email="one@example.com")
    LeadFactory(email="two@example.com")
    result = bulk_upsert([{"external_id": "e-1", "email": "two@example.com"}])
    assert result["errors"] == 1 and "email" in result["results"][0]["errors"]


def test_the_email_less_external_id_import_creates_the_leads_and_a_reimport_changes_nothing():
    text = "external_id,first_name,company,phone,country,linkedin_url\r\n" + "".join(
        f"crm-{i},Ana{i},Acme,+1 415 555 01{i:02d},US,https://www.linkedin.com/in/ana{i}\r\n" for i in range(30)
    )
    result = import_leads(io.StringIO(text))
    assert (result.created, result.rejected) == (30, [])
    lead = Lead.objects.get(external_id="crm-3")
    assert (lead.email, lead.phone, lead.social_profiles) == (
        None,
        "+14155550103",
        ["https://www.linkedin.com/in/ana3"],
    )
    again = import_leads(io.StringIO(text))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 30)


def test_an_import_row_known_only_by_phone_matches_the_lead_with_that_number():
    lead = LeadFactory(email="p@example.com", phone="+442079460000", company="Old")
    result = import_leads(io.StringIO("phone,country,company\r\n020 7946 0000,GB,New\r\n"))
    assert (result.created, result.updated) == (0, 1)
    lead.refresh_from_db()
    assert lead.company == "New"


def test_an_invalid_phone_in_an_import_is_rejected_with_its_column():
    result = import_leads(io.StringIO("email,phone,country\r\na@example.com,12345,US\r\n"))
    assert [(r.line, r.column) for r in result.rejected] == [(2, "phone")]


def test_the_admin_form_normalises_the_phone_and_needs_an_identifier():
    data = {
        "phone": "(415) 555-0132",
        "country": "US",
        "social_profiles": "https://x.com/ana\nhttps://www.linkedin.com/in/ana",
        "attributes": "{}",
        "stage": "lead",
        "stage_entered_at": "2026-01-01 10:00",
        "created_at": "2026-01-01 10:00",
        "fit_score": "0",
        "behavior_score": "0",
        "recycle_count": "0",
    }
    form = LeadIdentityForm(data=data)
    form.is_valid()
    assert "phone" not in form.errors and "social_profiles" not in form.errors
    assert form.cleaned_data["phone"] == "+14155550132"
    assert form.cleaned_data["social_profiles"] == ["https://x.com/ana", "https://www.linkedin.com/in/ana"]
    empty = LeadIdentityForm(data={**data, "phone": "", "social_profiles": ""})
    assert not empty.is_valid()
    assert "external id, e-mail or phone" in str(empty.errors)
