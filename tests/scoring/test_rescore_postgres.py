"""The PostgreSQL rescore computes behavior in SQL: it must agree with the pure engine."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads.models import Stage
from scoring import definitions, engine, services
from tests.factories import EventFactory, LeadFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("path", ["rescore_all", "event_batch"])
def test_sql_rescore_matches_the_engine_for_caps_decay_filters_and_hand_raisers(
    marketer, manager, team, active_spec_definition, path
):
    """Both SQL paths: the set-based rescore (id ranges) and the scoring of an event batch
    (the leads the batch touched, by id list)."""
    now = timezone.now()
    leads = []
    for i in range(12):
        lead = LeadFactory(
            email=f"p{i}@{'gmail.com' if i == 3 else 'acme.example'}",
            job_title="VP Sales" if i % 2 else "Analyst",
            stage=Stage.RECYCLED if i == 5 else Stage.LEAD,
            stage_entered_at=now - dt.timedelta(days=5),
        )
        for j in range(i % 5 + 1):
            EventFactory(
                lead=lead,
                type="page_view",
                occurred_at=now - dt.timedelta(days=7 * j),
                properties={"url": "/pricing" if j % 2 == 0 else "/blog"},
            )
        for j in range(i % 4):
            EventFactory(lead=lead, type="webinar_attended", occurred_at=now - dt.timedelta(days=20 * j), properties={})
        if i in (5, 7):
            EventFactory(lead=lead, type="demo_request", occurred_at=now - dt.timedelta(days=1), properties={})
        leads.append(lead)

    if path == "rescore_all":
        services.rescore_all(now=now)
    else:
        services.on_events_recorded([lead.pk for lead in leads], now=now)

    definition = definitions.compiled(definitions.active_definition())
    assert services._behavior_query(definition) is not None  # the SQL path, not the engine's
    for lead in leads:
        lead.refresh_from_db()
        events = services._load_events([lead.pk], definition)[lead.pk]
        assert lead.behavior_score == pytest.approx(engine.behavior_score(definition, events, now=now), abs=0.01)
        assert lead.fit_score == engine.fit_score(definition, {n: getattr(lead, n) for n in services.FACT_FIELDS})
    by_email = {lead.email: lead for lead in leads}
    assert by_email["p5@acme.example"].stage == Stage.MQL  # recycled, fit, demo request after recycling
    assert by_email["p7@acme.example"].stage == Stage.MQL
    assert by_email["p3@gmail.com"].stage == Stage.LEAD


@pytest.mark.django_db(transaction=True)
def test_rescore_shared_by_two_workers_scores_and_promotes_like_one(
    marketer, manager, team, active_spec_definition, monkeypatch
):
    from collections import Counter

    from leads.models import Lead, StageTransition

    now = timezone.now()
    leads = []
    for i in range(40):
        lead = LeadFactory(
            email=f"w{i}@acme.example", job_title="VP Sales" if i % 3 else "Analyst", employees=500, company="Acme"
        )
        for j in range(i % 4):
            EventFactory(lead=lead, type="webinar_attended", occurred_at=now - dt.timedelta(minutes=j), properties={})
        leads.append(lead)
    monkeypatch.setattr(services, "SQL_BATCH_SIZE", 3)
    seen = []

    result = services.rescore_all(now=now, workers=2, progress=lambda done, total: seen.append((done, total)))

    definition = definitions.compiled(definitions.active_definition())
    expected_mql = set()
    for lead in leads:
        lead.refresh_from_db()
        events = services._load_events([lead.pk], definition)[lead.pk]
        behavior = engine.behavior_score(definition, events, now=now)
        assert lead.behavior_score == pytest.approx(behavior, abs=0.01)
        if lead.fit_score >= definition.fit_threshold and behavior >= definition.behavior_threshold:
            expected_mql.add(lead.pk)
    assert result == {"scored": 40, "promoted": len(expected_mql)} and expected_mql
    assert set(Lead.objects.filter(stage=Stage.MQL).values_list("pk", flat=True)) == expected_mql
    assert Counter(StageTransition.objects.values_list("lead_id", flat=True)) == dict.fromkeys(expected_mql, 1)
    owners = Counter(Lead.objects.filter(stage=Stage.MQL).values_list("owner__username", flat=True))
    assert set(owners) == {"rep1", "rep2"} and abs(owners["rep1"] - owners["rep2"]) <= 1
    assert len(seen) == 14 and seen[-1] == (40, 40)
