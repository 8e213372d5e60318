"""Concurrent event batches on shared leads, with scoring and promotion on (PostgreSQL)."""

from __future__ import annotations

import random

import pytest

from leads.models import Event, Lead, Stage
from leads.services.ingest import ingest_events
from scoring import definitions, services
from sla.services import install_default_policies
from tests.factories import LeadFactory
from tests.scoring.conftest import SPEC_DEFINITION
from tests.sla.conftest import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_batches_on_the_same_leads_all_succeed_and_promote_each_lead_once(team, marketer, manager):
    install_default_policies()
    definition = definitions.create_definition(SPEC_DEFINITION, user=marketer)
    definitions.sign_definition(definition, user=marketer)
    definitions.sign_definition(definition, user=manager)
    services.activate_definition(definition, user=marketer, rescore="no")
    leads = [LeadFactory(job_title="VP Marketing", company="Acme") for _ in range(40)]

    def post_batches() -> int:
        rng = random.Random()
        stored = 0
        for _ in range(4):
            batch = [
                {
                    "lead": {"id": rng.choice(leads).pk},
                    "type": rng.choice(["webinar_attended", "page_view"]),
                    "properties": {"url": "/pricing"},
                }
                for _ in range(150)
            ]
            stored += ingest_events(batch)["created"]
        return stored

    results, errors = run_together(post_batches, count=3)

    assert errors == []
    assert sum(results) == Event.objects.count() == 3 * 4 * 150
    promoted = Lead.objects.filter(pk__in=[lead.pk for lead in leads], stage=Stage.MQL)
    assert promoted.count() > 0
    for lead in promoted:
        assert lead.transitions.filter(to_stage=Stage.MQL).count() == 1
        assert lead.owner_id is not None and lead.sla_due_at is not None
