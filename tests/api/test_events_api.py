from __future__ import annotations

import pytest

from leads.models import Event, Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_single_event_for_unknown_email_creates_the_lead(as_marketer):
    response = as_marketer.post(
        "/api/v1/events/",
        {
            "lead": {"email": "New@Example.com"},
            "type": "page_view",
            "properties": {"url": "/pricing"},
            "event_id": "e-1",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"received": 1, "created": 1, "duplicates": 0, "leads_created": 1}
    event = Event.objects.get(event_id="e-1")
    assert event.lead.email == "new@example.com"
    assert event.occurred_at is not None


def test_events_match_leads_by_id_email_and_external_id_and_dedupe_event_id(as_marketer):
    lead = LeadFactory(email="k@example.com", external_id="crm-9")
    batch = [
        {"lead": {"id": lead.pk}, "type": "a", "event_id": "x1"},
        {"lead": {"email": "k@example.com"}, "type": "b", "event_id": "x2"},
        {"lead": {"external_id": "crm-9"}, "type": "c", "event_id": "x3", "occurred_at": "2026-01-05T10:00:00Z"},
    ]
    assert as_marketer.post("/api/v1/events/", batch, format="json").json()["created"] == 3
    again = as_marketer.post("/api/v1/events/", batch, format="json").json()
    assert again["created"] == 0 and again["duplicates"] == 3
    assert Event.objects.filter(lead=lead).count() == 3


def test_one_bad_item_fails_the_batch_naming_its_index_and_stores_nothing(as_marketer):
    batch = [
        {"lead": {"email": "ok@example.com"}, "type": "a", "event_id": "ok-1"},
        {"lead": {}, "type": "b"},
        {"lead": {"email": "ok@example.com"}, "type": "", "occurred_at": "someday"},
    ]
    response = as_marketer.post("/api/v1/events/", batch, format="json")
    assert response.status_code == 400
    items = response.json()["fields"]["items"]
    assert set(items) == {"1", "2"}
    assert {"type", "occurred_at"} <= set(items["2"])
    assert Event.objects.count() == 0 and Lead.objects.count() == 0


def test_unknown_lead_id_is_a_400_for_that_item(as_marketer):
    response = as_marketer.post("/api/v1/events/", [{"lead": {"id": 999999}, "type": "a"}], format="json")
    assert response.status_code == 400
    assert "lead" in response.json()["fields"]["items"]["0"]


def test_more_than_1000_events_is_413(as_marketer):
    batch = [{"lead": {"email": "a@example.com"}, "type": "a"} for _ in range(1001)]
    response = as_marketer.post("/api/v1/events/", batch, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_items"


def test_rep_may_not_post_events(as_rep):
    response = as_rep.post("/api/v1/events/", {"lead": {"email": "a@example.com"}, "type": "a"}, format="json")
    assert response.status_code == 403
