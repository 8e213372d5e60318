"""The people API (issue 21): merge, the redirect of a merged lead, duplicates, privacy, consent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import HistoricalStep, record_history
from leads.models import Lead, LeadAuditEntry, PeopleAction
from tests.factories import EventFactory, LeadFactory

pytestmark = pytest.mark.django_db


def test_merge_answers_with_the_survivor_and_the_old_id_redirects_to_it(as_marketer):
    survivor, duplicate = LeadFactory(), LeadFactory()
    EventFactory(lead=duplicate)

    response = as_marketer.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["lead"]["id"] == survivor.pk
    assert response.json()["merge"]["events_moved"] == 1
    old = as_marketer.get(f"/api/v1/leads/{duplicate.pk}/")
    assert old.status_code == 301
    assert old.json()["merged_into"] == survivor.pk
    assert old["Location"].endswith(f"/api/v1/leads/{survivor.pk}/")
    assert as_marketer.get(old["Location"]).json()["id"] == survivor.pk


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "duplicate"),
        ({"duplicate": "x"}, 400, "duplicate"),
        ({"duplicate": 999999}, 400, "duplicate"),
        ("self", 400, "duplicate"),
        ("merged", 409, "duplicate"),
    ],
)
def test_bad_merge_requests_are_refused_naming_the_field(as_manager, body, status, field):
    survivor = LeadFactory()
    if body == "self":
        body = {"duplicate": survivor.pk}
    elif body == "merged":
        other, gone = LeadFactory(), LeadFactory()
        assert (
            as_manager.post(f"/api/v1/leads/{other.pk}/merge/", {"duplicate": gone.pk}, format="json").status_code
            == 200
        )
        body = {"duplicate": gone.pk}
    before = Lead.objects.filter(merged_into__isnull=False).count()

    response = as_manager.post(f"/api/v1/leads/{survivor.pk}/merge/", body, format="json")

    assert response.status_code == status, response.content
    assert field in response.json()["fields"]
    assert Lead.objects.filter(merged_into__isnull=False).count() == before


def test_reps_may_not_merge_export_or_erase(as_rep, rep):
    lead = LeadFactory(owner=rep, stage="mql")
    other = LeadFactory(owner=rep, stage="mql")
    assert as_rep.post(f"/api/v1/leads/{lead.pk}/merge/", {"duplicate": other.pk}, format="json").status_code == 403
    assert as_rep.get(f"/api/v1/leads/{lead.pk}/privacy-export/").status_code == 403
    assert as_rep.post(f"/api/v1/leads/{lead.pk}/erase/").status_code == 403
    assert Lead.objects.get(pk=lead.pk).erased_at is None


def test_duplicates_list_says_why_two_leads_match(as_marketer):
    a = LeadFactory(email="kim@acme.example")
    b = LeadFactory(email="KIM+promo@acme.example")
    pairs = as_marketer.get("/api/v1/leads/duplicates/").json()["pairs"]
    assert pairs[0]["leads"] == [a.pk, b.pk]
    assert "same e-mail address" in pairs[0]["reasons"][0]


def test_privacy_export_and_erase_through_the_api_are_audited(as_manager, manager):
    lead = LeadFactory(email="pat@acme.example", first_name="Pat")
    export = as_manager.get(f"/api/v1/leads/{lead.pk}/privacy-export/")
    assert export.status_code == 200 and export.json()["leads"][0]["email"] == "pat@acme.example"
    erased = as_manager.post(f"/api/v1/leads/{lead.pk}/erase/")
    assert erased.status_code == 200
    assert as_manager.get(f"/api/v1/leads/{lead.pk}/").json()["first_name"] == ""
    actions = list(LeadAuditEntry.objects.filter(lead=lead, actor=manager).values_list("action", flat=True))
    assert actions == [PeopleAction.PRIVACY_EXPORT, PeopleAction.ERASE]


def test_consent_can_be_read_and_recorded(as_marketer):
    lead = LeadFactory()
    assert as_marketer.get(f"/api/v1/leads/{lead.pk}/consent/").json()["may_email"] is True
    response = as_marketer.post(f"/api/v1/leads/{lead.pk}/consent/", {"email_opt_out": True}, format="json")
    assert response.json()["email_opt_out"] is True and response.json()["may_email"] is False
    bad = as_marketer.post(f"/api/v1/leads/{lead.pk}/consent/", {}, format="json")
    assert bad.status_code == 400 and "email_opt_out" in bad.json()["fields"]


def test_the_survivors_history_shows_the_duplicates_stage_history(as_marketer, marketer):
    survivor, duplicate = LeadFactory(), LeadFactory()
    record_history(
        duplicate,
        steps=[HistoricalStep(to_stage="mql", at=timezone.now() - dt.timedelta(days=2))],
        actor=lifecycle.SYSTEM,
    )
    as_marketer.post(f"/api/v1/leads/{survivor.pk}/merge/", {"duplicate": duplicate.pk}, format="json")
    history = as_marketer.get(f"/api/v1/leads/{survivor.pk}/history/").json()
    assert [t["to_stage"] for t in history["transitions"]] == ["mql"]
