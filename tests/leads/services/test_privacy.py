"""Privacy requests and consent (issue 21)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import HistoricalStep, record_history
from leads.models import (
    Event,
    Lead,
    LeadAuditEntry,
    PeopleAction,
    StageTransition,
    Touch,
    WebhookDelivery,
    WebhookSubscription,
)
from leads.services.ingest import ingest_events
from leads.services.merge import merge_leads
from leads.services.privacy import erase_person, export_person, scrub_properties
from tests.api.conftest import client_for
from tests.factories import EventFactory, LeadFactory
from tests.leads.services.test_merge import _reports

pytestmark = pytest.mark.django_db


def _person(team):
    lead = LeadFactory(email="ana@acme.example", first_name="Ana", last_name="Lee", team=team, external_id="crm-1")
    start = timezone.now() - dt.timedelta(days=10)
    record_history(
        lead,
        steps=[
            HistoricalStep(to_stage="mql", at=start),
            HistoricalStep(to_stage="sal", at=start + dt.timedelta(days=1)),
        ],
        actor=lifecycle.SYSTEM,
    )
    EventFactory(
        lead=lead, properties={"url": "/pricing?email=ana@acme.example", "email": "ana@acme.example", "plan": "pro"}
    )
    Touch.objects.create(lead=lead, kind="call", outcome="connected", note="Ana asked for a call back")
    sub = WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", events=["lead.mql"])
    WebhookDelivery.objects.create(
        subscription=sub, event="lead.mql", payload={"event": "lead.mql", "lead": {"id": lead.pk, "email": lead.email}}
    )
    lead.refresh_from_db()
    return lead


def test_privacy_export_holds_everything_about_the_person_and_is_audited(team, marketer):
    lead = _person(team)
    duplicate = LeadFactory(email="ana.lee@acme.example")
    EventFactory(lead=duplicate, event_id="dup-1")
    merge_leads(lead, duplicate, by=lifecycle.Actor.person(marketer))

    data = export_person(Lead.objects.get(pk=duplicate.pk), by=lifecycle.Actor.person(marketer))

    assert data["person"] == lead.pk
    assert {item["email"] for item in data["leads"]} == {"ana@acme.example", "ana.lee@acme.example"}
    assert len(data["events"]) == 2 and len(data["touches"]) == 1
    assert [s["to_stage"] for s in data["stage_history"]] == ["mql", "sal"]
    assert data["webhooks_sent"][0]["payload"]["lead"]["email"] == "ana@acme.example"
    assert data["scores"][0]["lead"] == lead.pk
    assert LeadAuditEntry.objects.filter(lead=lead, action=PeopleAction.PRIVACY_EXPORT, actor=marketer).exists()


def test_erasure_removes_personal_data_and_keeps_the_stage_history(team, marketer):
    lead = _person(team)
    transitions = list(StageTransition.objects.filter(lead=lead).values_list("to_stage", "at"))

    erase_person(lead, by=lifecycle.Actor.person(marketer))

    lead.refresh_from_db()
    assert (lead.first_name, lead.last_name, lead.external_id) == ("", "", None)
    assert lead.email is None and lead.erased_at is not None and not lead.may_email()
    event = Event.objects.get(lead=lead)
    assert event.properties == {"url": "/pricing", "plan": "pro"}
    assert Touch.objects.get(lead=lead).note == ""
    assert WebhookDelivery.objects.get().payload["lead"]["email"] is None
    assert list(StageTransition.objects.filter(lead=lead).values_list("to_stage", "at")) == transitions
    assert (lead.stage, lead.source, lead.country, lead.team_id) == ("sal", "webinar", "US", team.pk)
    assert LeadAuditEntry.objects.get(action=PeopleAction.ERASE).details["leads"] == [lead.pk]


def test_reports_are_identical_before_and_after_erasure(team, marketer, manager):
    lead = _person(team)
    client = client_for(manager)
    before = _reports(client)
    erase_person(lead, by=lifecycle.Actor.person(marketer))
    assert _reports(client) == before


def test_an_unsubscribe_event_opts_the_lead_out_of_email():
    lead = LeadFactory(email="bo@acme.example")
    assert lead.may_email()
    ingest_events([{"lead": {"email": "bo@acme.example"}, "type": "unsubscribe", "event_id": "u-1"}])
    lead.refresh_from_db()
    assert lead.email_opt_out and lead.email_opt_out_source == "unsubscribe" and not lead.may_email()
    assert LeadAuditEntry.objects.filter(lead=lead, action=PeopleAction.OPT_OUT).count() == 1


def test_scrubbing_drops_personal_keys_and_values_naming_the_person():
    props = {"Full-Name": "Ana Lee", "ref": "from ana@x.example", "url": "/a?x=1#b", "n": 3}
    assert scrub_properties(props, identifiers={"ana@x.example"}) == {"url": "/a", "n": 3}
