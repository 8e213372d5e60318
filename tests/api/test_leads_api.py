from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from leads.models import Lead, Stage
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_anonymous_caller_gets_401_in_the_error_shape():
    response = APIClient().get("/api/v1/leads/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert set(response.json()) >= {"code", "detail", "fields"}


def test_marketer_creates_lead_and_reads_it_back_with_read_only_fields(as_marketer):
    response = as_marketer.post(
        "/api/v1/leads/",
        {
            "email": "Ana@Example.com",
            "company": "Acme",
            "country": "us",
            "employees": 250,
            "stage": "sql",
            "fit_score": 99,
            "attributes": {"plan": "pro"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "ana@example.com"
    assert body["country"] == "US"
    assert body["stage"] == "lead"  # read-only: the body's "sql" is ignored
    assert body["fit_score"] == 0
    assert body["owner"] is None
    read = as_marketer.get(f"/api/v1/leads/{body['id']}/").json()
    assert read["attributes"] == {"plan": "pro"}


def test_create_with_bad_fields_names_each_field(as_marketer):
    response = as_marketer.post(
        "/api/v1/leads/", {"email": "not-an-email", "country": "USA", "employees": -3}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {"email", "country", "employees"} <= set(body["fields"])
    assert Lead.objects.count() == 0


def test_duplicate_email_is_a_400_not_a_500(as_marketer):
    LeadFactory(email="dup@example.com")
    response = as_marketer.post("/api/v1/leads/", {"email": "dup@example.com"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["fields"]


def test_rep_cannot_create_leads(as_rep):
    response = as_rep.post("/api/v1/leads/", {"email": "x@example.com"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_patch_changes_profile_but_not_stage(as_manager):
    lead = LeadFactory(stage=Stage.LEAD, company="Old")
    response = as_manager.patch(f"/api/v1/leads/{lead.pk}/", {"company": "New", "stage": "won"}, format="json")
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.company == "New"
    assert lead.stage == Stage.LEAD


def test_rep_sees_only_own_leads_and_team_unassigned_mqls(as_rep, rep, rep2, team):
    mine = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    pool = LeadFactory(stage=Stage.MQL, owner=None, team=team)
    theirs = LeadFactory(stage=Stage.SAL, owner=rep2, team=team)
    ids = {row["id"] for row in as_rep.get("/api/v1/leads/").json()["results"]}
    assert ids == {mine.pk, pool.pk}
    assert as_rep.get(f"/api/v1/leads/{theirs.pk}/").status_code == 404
    assert as_rep.get(f"/api/v1/leads/{theirs.pk}/").json()["code"] == "not_found"


def test_list_is_paginated_with_count_and_next(as_marketer):
    LeadFactory.create_batch(55)
    first = as_marketer.get("/api/v1/leads/").json()
    assert first["count"] == 55
    assert len(first["results"]) == 50
    assert first["next"]
    second = as_marketer.get(first["next"]).json()
    assert len(second["results"]) == 5 and second["next"] is None


def test_list_filters_by_stage_source_and_min_fit(as_marketer):
    LeadFactory(stage=Stage.MQL, source="webinar", fit_score=80, email="hit@example.com")
    LeadFactory(stage=Stage.MQL, source="webinar", fit_score=10)
    LeadFactory(stage=Stage.LEAD, source="webinar", fit_score=90)
    LeadFactory(stage=Stage.MQL, source="ads", fit_score=90)
    rows = as_marketer.get("/api/v1/leads/?stage=mql&source=webinar&min_fit=50").json()["results"]
    assert [row["email"] for row in rows] == ["hit@example.com"]


def test_bad_filter_value_is_a_400(as_marketer):
    response = as_marketer.get("/api/v1/leads/?updated_since=yesterday")
    assert response.status_code == 400
    assert "updated_since" in response.json()["fields"]


def test_bulk_upsert_of_1000_leads_twice_gives_1000_leads_updated(as_marketer):
    rows = [{"external_id": f"crm-{i}", "email": f"p{i}@example.com", "company": "A"} for i in range(1000)]
    first = as_marketer.post("/api/v1/leads/bulk/", {"leads": rows}, format="json").json()
    assert first["created"] == 1000 and first["errors"] == 0
    for row in rows:
        row["company"] = "B"
    second = as_marketer.post("/api/v1/leads/bulk/", {"leads": rows}, format="json").json()
    assert second["updated"] == 1000 and second["created"] == 0
    assert Lead.objects.count() == 1000
    assert set(Lead.objects.values_list("company", flat=True)) == {"B"}


def test_bulk_reports_bad_rows_and_writes_the_good_ones(as_marketer):
    LeadFactory(email="known@example.com", company="Old")
    rows = [
        {"email": "known@example.com", "company": "New"},
        {"email": "broken", "company": "X"},
        {"email": "fresh@example.com"},
    ]
    body = as_marketer.post("/api/v1/leads/bulk/", {"leads": rows}, format="json").json()
    assert [r["status"] for r in body["results"]] == ["updated", "error", "created"]
    assert "email" in body["results"][1]["errors"]
    assert Lead.objects.get(email="known@example.com").company == "New"
    assert not Lead.objects.filter(company="X").exists()


def test_bulk_over_1000_rows_is_413(as_marketer):
    rows = [{"email": f"p{i}@example.com"} for i in range(1001)]
    response = as_marketer.post("/api/v1/leads/bulk/", {"leads": rows}, format="json")
    assert response.status_code == 413
    assert Lead.objects.count() == 0


def test_same_idempotency_key_twice_creates_one_lead(as_marketer):
    body = {"email": "once@example.com"}
    first = as_marketer.post("/api/v1/leads/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = as_marketer.post("/api/v1/leads/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Lead.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(as_marketer):
    as_marketer.post("/api/v1/leads/", {"email": "a@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = as_marketer.post("/api/v1/leads/", {"email": "b@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Lead.objects.count() == 1


def test_export_csv_uses_import_columns_and_list_filters(as_marketer):
    LeadFactory(email="a@example.com", source="webinar", external_id="x1")
    LeadFactory(email="b@example.com", source="ads")
    response = as_marketer.get("/api/v1/leads/export.csv?source=webinar")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["email"] for row in rows] == ["a@example.com"]
    assert rows[0]["external_id"] == "x1"
    assert "became_mql_at" in rows[0]


def test_external_id_is_unique_among_leads_that_have_one(as_marketer):
    LeadFactory(email="first@example.com", external_id="crm-1")
    LeadFactory(email="none1@example.com", external_id=None)
    duplicate = as_marketer.post(
        "/api/v1/leads/", {"email": "second@example.com", "external_id": "crm-1"}, format="json"
    )
    assert duplicate.status_code == 400, duplicate.content
    assert "external_id" in duplicate.json()["fields"]
    # Leads without one are many; an empty string is stored as "none" too.
    for email, ext in (("none2@example.com", None), ("none3@example.com", "")):
        response = as_marketer.post("/api/v1/leads/", {"email": email, "external_id": ext}, format="json")
        assert response.status_code == 201, response.content
    other = LeadFactory(email="other@example.com", external_id="crm-2")
    moved = as_marketer.patch(f"/api/v1/leads/{other.pk}/", {"external_id": "crm-1"}, format="json")
    assert moved.status_code == 400, moved.content
    assert "external_id" in moved.json()["fields"]
    assert Lead.objects.get(pk=other.pk).external_id == "crm-2"
    assert Lead.objects.filter(external_id__isnull=True).count() == 3
