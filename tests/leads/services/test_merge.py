"""Merging a duplicate lead (issue 21): everything moves to the survivor, the duplicate
redirects, the audit trail records it, and the reports keep their counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import HistoricalStep, record_history
from leads.models import Event, Lead, LeadAuditEntry, PeopleAction, Stage, StageTransition, Touch
from leads.services.duplicates import find_duplicates, normalise_email, phone_key
from leads.services.errors import ServiceError
from leads.services.ingest import ingest_events
from leads.services.merge import merge_leads
from tests.api.conftest import client_for
from tests.factories import EventFactory, LeadFactory

pytestmark = pytest.mark.django_db

REPORTS = ("funnel", "efficiency", "rejections", "commitment")


def _reports(client) -> dict:
    today = timezone.localdate()
    out = {}
    for name in REPORTS:
        for group in ("", "source", "country"):
            url = f"/api/v1/reports/{name}/?from={today - dt.timedelta(days=60)}&to={today}"
            body = client.get(url + (f"&group_by={group}" if group else "")).json()
            body.pop("as_of", None)
            out[(name, group)] = body
    return out


def _with_history(lead: Lead, *stages: str) -> Lead:
    start = timezone.now() - dt.timedelta(days=20)
    steps = [HistoricalStep(to_stage=s, at=start + dt.timedelta(days=i + 1)) for i, s in enumerate(stages)]
    record_history(lead, steps=steps, actor=lifecycle.SYSTEM)
    lead.refresh_from_db()
    return lead


def test_merge_moves_events_and_touches_and_redirects_the_duplicate(marketer):
    survivor = LeadFactory(email="ana@acme.example", first_name="Ana", last_name="Lee", job_title="")
    loser = LeadFactory(email="ana.lee@acme.example", first_name="Ana", last_name="Lee", job_title="CTO")
    EventFactory(lead=survivor, event_id="e-1")
    EventFactory(lead=loser, event_id="e-1")  # the same event delivered to both leads
    EventFactory(lead=loser, event_id="e-2", type="webinar_attended")
    Touch.objects.create(lead=loser, kind="call", outcome="connected")

    details = merge_leads(survivor, loser, by=lifecycle.Actor.person(marketer))

    assert sorted(Event.objects.filter(lead=survivor).values_list("event_id", flat=True)) == ["e-1", "e-2"]
    assert not Event.objects.filter(lead=loser).exists()
    assert Touch.objects.filter(lead=survivor).count() == 1
    loser.refresh_from_db()
    survivor.refresh_from_db()
    assert loser.merged_into_id == survivor.pk and loser.merged_at is not None
    assert survivor.job_title == "CTO"  # an empty field filled from the duplicate
    assert details["events_moved"] == 1 and details["events_dropped_as_duplicates"] == 1
    entry = LeadAuditEntry.objects.get(action=PeopleAction.MERGE)
    assert (entry.lead_id, entry.other_lead_id, entry.actor_id) == (survivor.pk, loser.pk, marketer.pk)


def test_merge_keeps_the_survivors_stage_and_history_and_closes_the_duplicates_clock(marketer, team, rep):
    survivor = _with_history(LeadFactory(team=team), Stage.MQL, Stage.SAL)
    loser = _with_history(LeadFactory(team=team), Stage.MQL)
    Lead.objects.filter(pk=loser.pk).update(sla_due_at=timezone.now() + dt.timedelta(hours=3), sla_clock="mql_decision")
    transitions_before = StageTransition.objects.count()

    merge_leads(survivor, loser, by=lifecycle.Actor.person(marketer))

    survivor.refresh_from_db()
    loser.refresh_from_db()
    assert survivor.stage == Stage.SAL
    assert StageTransition.objects.count() == transitions_before  # a merge is no stage change
    assert loser.sla_due_at is None  # the sweep will not recycle a merged duplicate


def test_reports_count_the_same_after_a_merge(marketer, manager, team):
    survivor = _with_history(LeadFactory(team=team, source="webinar", country="US"), Stage.MQL, Stage.SAL, Stage.SQL)
    loser = _with_history(LeadFactory(team=team, source="ads", country=""), Stage.MQL, Stage.RECYCLED)
    _with_history(LeadFactory(team=team), Stage.MQL)
    client = client_for(manager)
    before = _reports(client)
    assert any(row["entered"] for row in before[("funnel", "")]["stages"])

    merge_leads(survivor, loser, by=lifecycle.Actor.person(marketer))

    assert _reports(client) == before


def test_a_lead_cannot_be_merged_into_itself_or_twice(marketer):
    a, b, c = LeadFactory(), LeadFactory(), LeadFactory()
    by = lifecycle.Actor.person(marketer)
    with pytest.raises(ServiceError) as itself:
        merge_leads(a, a, by=by)
    assert "duplicate" in itself.value.fields
    merge_leads(a, b, by=by)
    with pytest.raises(ServiceError) as twice:
        merge_leads(c, Lead.objects.get(pk=b.pk), by=by)
    assert twice.value.code == "already_merged" and "duplicate" in twice.value.fields
    with pytest.raises(ServiceError) as into_merged:
        merge_leads(Lead.objects.get(pk=b.pk), c, by=by)
    assert "id" in into_merged.value.fields


def test_duplicates_are_found_by_normalised_email_and_similar_name_at_similar_company():
    a = LeadFactory(email="Jo.Smith+news@example.org", first_name="Jo", last_name="Smith", company="Globex")
    b = LeadFactory(email="jo.smith@example.org", first_name="J", last_name="S", company="Other")
    c = LeadFactory(email="mary@initech.example", first_name="Mary", last_name="O'Neil", company="Initech Inc.")
    d = LeadFactory(email="m.oneil@gmail.com", first_name="Mary", last_name="ONeil", company="Initech")
    LeadFactory(email="zed@else.example", first_name="Zed", last_name="Zee", company="Elsewhere")

    pairs = {c_.key: c_.reasons for c_ in find_duplicates()}

    assert set(pairs) == {(a.pk, b.pk), (c.pk, d.pk)}
    assert "same e-mail address" in pairs[(a.pk, b.pk)][0]
    assert "similar name and company" in pairs[(c.pk, d.pk)][0]


def test_merged_leads_are_no_longer_candidates(marketer):
    a = LeadFactory(email="x@example.org")
    b = LeadFactory(email="X+1@example.org")
    merge_leads(a, b, by=lifecycle.Actor.person(marketer))
    assert find_duplicates() == []


def test_phone_matching_is_a_no_op_without_a_phone_field():
    lead = LeadFactory()
    assert phone_key(lead) == ("" if not hasattr(lead, "phone") else phone_key(lead))
    assert normalise_email(" A.B+x@GoogleMail.com ") == "ab@gmail.com"


def test_events_sent_for_a_merged_duplicate_land_on_the_survivor(marketer):
    survivor = LeadFactory(email="kai@acme.example")
    duplicate = LeadFactory(email="kai.old@acme.example")
    merge_leads(survivor, duplicate, by=lifecycle.Actor.person(marketer))

    ingest_events(
        [
            {"lead": {"email": "kai.old@acme.example"}, "type": "page_view", "event_id": "late-1"},
            {"lead": {"id": duplicate.pk}, "type": "page_view", "event_id": "late-2"},
        ]
    )

    assert sorted(Event.objects.filter(lead=survivor).values_list("event_id", flat=True)) == ["late-1", "late-2"]
