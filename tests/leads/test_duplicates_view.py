"""The "possible duplicates" page (issue 21)."""

from __future__ import annotations

import pytest
from django.test import Client

from leads import lifecycle
from leads.models import Lead
from leads.services.merge import merge_leads
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_marketing_sees_pairs_with_reasons_and_merges_with_the_button(marketer):
    a = LeadFactory(email="lee@acme.example", stage="mql")
    b = LeadFactory(email="Lee+x@acme.example")
    client = _client(marketer)

    page = client.get("/leads/duplicates/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "same e-mail address" in html and f'name="duplicate" value="{b.pk}"' in html
    token = page.cookies["csrftoken"].value
    done = client.post(
        "/leads/duplicates/merge/", {"survivor": a.pk, "duplicate": b.pk, "csrfmiddlewaretoken": token}, follow=True
    )
    assert "was merged into" in done.content.decode()
    assert Lead.objects.get(pk=b.pk).merged_into_id == a.pk
    assert "No possible duplicates found." in done.content.decode()


def test_merge_without_csrf_token_is_refused(manager):
    a, b = LeadFactory(email="q@x.example"), LeadFactory(email="Q@x.example")
    response = _client(manager).post("/leads/duplicates/merge/", {"survivor": a.pk, "duplicate": b.pk})
    assert response.status_code == 403
    assert Lead.objects.get(pk=b.pk).merged_into_id is None


def test_reps_may_not_see_duplicates(rep):
    assert _client(rep).get("/leads/duplicates/").status_code == 403


def test_a_merged_duplicate_leaves_the_reps_inbox(marketer, rep, team):
    survivor = LeadFactory(owner=rep, team=team, stage="mql")
    duplicate = LeadFactory(owner=rep, team=team, stage="mql")
    client = _client(rep)
    assert f"/leads/{duplicate.pk}/" in client.get("/inbox/").content.decode()
    merge_leads(survivor, duplicate, by=lifecycle.Actor.person(marketer))
    inbox = client.get("/inbox/").content.decode()
    assert f"/leads/{duplicate.pk}/" not in inbox and f"/leads/{survivor.pk}/" in inbox
