"""Privacy requests from the admin (issue 21)."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client, RequestFactory

from leads.models import Lead, LeadAuditEntry, PeopleAction
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/leads/lead/"


def _staff(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def test_marketing_exports_a_person_as_json_from_the_admin(marketer):
    lead = LeadFactory(email="ann@acme.example")
    response = _staff(marketer).post(CHANGELIST, {"action": "privacy_export", ACTION_CHECKBOX_NAME: [lead.pk]})
    assert response.status_code == 200
    assert json.loads(response.content)["leads"][0]["email"] == "ann@acme.example"
    assert LeadAuditEntry.objects.filter(lead=lead, action=PeopleAction.PRIVACY_EXPORT).exists()


def test_erasing_from_the_admin_asks_first_then_erases(manager):
    lead = LeadFactory(first_name="Ann")
    client = _staff(manager)
    ask = client.post(CHANGELIST, {"action": "erase_personal_data", ACTION_CHECKBOX_NAME: [lead.pk]})
    assert ask.status_code == 200 and b"cannot be undone" in ask.content
    assert Lead.objects.get(pk=lead.pk).erased_at is None
    client.post(CHANGELIST, {"action": "erase_personal_data", "confirm": "yes", ACTION_CHECKBOX_NAME: [lead.pk]})
    assert Lead.objects.get(pk=lead.pk).first_name == ""


def test_only_marketing_and_managers_get_the_privacy_actions(marketer, rep):
    model_admin = admin.site._registry[Lead]
    for user, expected in ((marketer, True), (rep, False)):
        request = RequestFactory().get(CHANGELIST)
        request.user = user
        actions = model_admin.get_actions(request)
        assert ("erase_personal_data" in actions, "privacy_export" in actions) == (expected, expected)
