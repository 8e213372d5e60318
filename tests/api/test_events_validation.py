"""Event validation (issue 22 point 5): values the database cannot store or the product must
not accept are a 400 naming the item and field, never a 500, and nothing of the batch is
written; event_id deduplicates per lead, not across leads."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import override_settings
from django.utils import timezone

from leads.models import Event, Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def _post_raw(client, body: str):
    return client.post(URL, body, content_type="application/json")


def _good(i: int = 0) -> dict:
    return {"lead": {"email": f"ok{i}@example.com"}, "type": "page_view", "event_id": f"ok-{i}"}


def _refused(response, index: int, field: str) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    message = body["fields"]["items"][str(index)][field]
    assert Event.objects.count() == 0 and Lead.objects.count() == 0, "nothing of the batch is written"
    return " ".join(message)


def test_an_infinite_number_in_properties_is_refused_naming_item_and_field(as_marketer):
    body = "[" + json.dumps(_good()) + ', {"lead": {"email": "a@example.com"}, "type": "t", '
    body += '"properties": {"deep": {"list": [1, 1e999]}}}]'
    message = _refused(_post_raw(as_marketer, body), 1, "properties")
    assert "deep.list[1]" in message and "finite" in message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_a_400(as_marketer, literal):
    body = '[{"lead": {"email": "a@example.com"}, "type": "t", "properties": {"x": ' + literal + "}}]"
    response = _post_raw(as_marketer, body)
    assert response.status_code == 400
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"lead": {"email": "a@example.com"}, "type": "page\x00view"}, "type"),
        ({"lead": {"email": "a@example.com"}, "type": "t", "event_id": "e\x00"}, "event_id"),
        ({"lead": {"email": "a@example.com"}, "type": "t", "properties": {"u": "x\x00"}}, "properties"),
        ({"lead": {"email": "a@example.com"}, "type": "t", "properties": {"k\x00": 1}}, "properties"),
        ({"lead": {"email": "a@example.com", "first_name": "A\x00"}, "type": "t"}, "lead"),
        ({"lead": {"email": "a@example.com"}, "type": "t", "occurred_at": "2026-01-01T00:00:00\x00"}, "occurred_at"),
    ],
)
def test_nul_characters_anywhere_are_refused(as_marketer, item, field):
    response = as_marketer.post(URL, [_good(), item], format="json")
    assert "NUL" in _refused(response, 1, field) or field == "occurred_at"


@pytest.mark.parametrize("lead_id", [2**63, 10**30, 0, -1])
def test_lead_ids_out_of_range_are_refused(as_marketer, lead_id):
    response = as_marketer.post(URL, [_good(), {"lead": {"id": lead_id}, "type": "t"}], format="json")
    assert "id must be an integer" in _refused(response, 1, "lead")


@pytest.mark.parametrize("email", ["a@b", "a@@example.com", "no-at-sign", "a b@example.com", "a@example..com"])
def test_event_emails_are_validated_as_on_leads(as_marketer, email):
    assert as_marketer.post("/api/v1/leads/", {"email": email}, format="json").status_code == 400
    response = as_marketer.post(URL, [_good(), {"lead": {"email": email}, "type": "t"}], format="json")
    assert "email" in _refused(response, 1, "lead")


def test_occurred_at_too_far_in_the_future_is_refused(as_marketer):
    soon = (timezone.now() + dt.timedelta(minutes=3)).isoformat()
    later = (timezone.now() + dt.timedelta(minutes=10)).isoformat()
    ok = as_marketer.post(URL, [{**_good(1), "occurred_at": soon}], format="json")
    assert ok.status_code == 201
    Event.objects.all().delete()
    Lead.objects.all().delete()
    response = as_marketer.post(URL, [_good(), {**_good(2), "occurred_at": later}], format="json")
    assert "5 minutes" in _refused(response, 1, "occurred_at")


def test_the_future_limit_is_a_setting(as_marketer):
    later = (timezone.now() + dt.timedelta(minutes=10)).isoformat()
    with override_settings(EVENTS_MAX_FUTURE_MINUTES=15):
        assert as_marketer.post(URL, [{**_good(), "occurred_at": later}], format="json").status_code == 201


def test_the_same_event_id_for_two_leads_makes_two_events_and_dedupes_per_lead(as_marketer):
    one = LeadFactory(email="one@example.com")
    two = LeadFactory(email="two@example.com")
    batch = [
        {"lead": {"id": one.pk}, "type": "webinar", "event_id": "wb-1"},
        {"lead": {"id": two.pk}, "type": "webinar", "event_id": "wb-1"},
    ]
    first = as_marketer.post(URL, batch, format="json").json()
    assert first["created"] == 2
    assert Event.objects.filter(event_id="wb-1").count() == 2
    again = as_marketer.post(URL, batch, format="json").json()
    assert again["created"] == 0 and again["duplicates"] == 2
