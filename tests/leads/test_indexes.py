"""The partial indexes still serve the queries they exist for (PostgreSQL: the planner must be
able to prove each query implies the index's condition)."""

from __future__ import annotations

import pytest
from django.db import connection

from leads.models import Lead, Stage
from leads.selectors import inbox_query
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_a_reps_inbox_branches_and_owner_lookups_use_the_owned_leads_index(rep, team):
    LeadFactory.create_batch(5, owner=rep, team=team, stage=Stage.MQL)
    LeadFactory.create_batch(20)  # ownerless: not in the index at all
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    own = inbox_query(rep).branches[0]
    assert "lead_inbox_idx" in own.order_by("sla_due_at").explain()
    # Deleting a rep sets their leads' owner to NULL: found through the same index.
    assert "lead_inbox_idx" in Lead.objects.filter(owner_id=rep.pk).explain()
    assert inbox_query(rep).count() == 5
