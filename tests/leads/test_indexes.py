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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_external_id_lookups_use_the_partial_unique_index():
    from leads.bulk import any_of

    LeadFactory.create_batch(3, external_id=None)
    LeadFactory(external_id="crm-1")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    field = Lead._meta.get_field("external_id")
    # The import's and the bulk upsert's look-up (an array behind a subquery), the API filter's.
    assert "lead_external_id_unique" in Lead.objects.filter(any_of(field, ["crm-1", "crm-2"])).explain()
    assert "lead_external_id_unique" in Lead.objects.filter(external_id__in=["crm-1", "crm-2"]).explain()
    assert "lead_external_id_unique" in Lead.objects.filter(external_id="crm-1").explain()
    assert list(Lead.objects.filter(any_of(field, ["crm-1", "crm-2"])).values_list("external_id", flat=True)) == [
        "crm-1"
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")
def test_transitions_by_user_use_the_indexes_that_leave_system_moves_out(rep):
    from leads.models import StageTransition

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    # What deleting a user runs (SET_NULL on both), and a user's own moves.
    assert "transition_actor_idx" in StageTransition.objects.filter(actor_id__in=[rep.pk]).explain()
    assert "transition_owner_idx" in StageTransition.objects.filter(owner_id__in=[rep.pk]).explain()
