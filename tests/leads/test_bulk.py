"""`leads.bulk.insert_objects`: what bulk_create would have stored, with the pks set."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from leads.bulk import insert_objects
from leads.models import Lead, Stage, StageTransition

pytestmark = pytest.mark.django_db


def test_rows_are_stored_with_every_column_and_the_objects_get_their_pks():
    at = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.timezone.utc)
    leads = [
        Lead(email=f"b{i}@acme.example", company="Acme", employees=10 * i, annual_revenue=Decimal("1234.50"),
             attributes={"plan": "pro", "seats": i}, stage=Stage.MQL, stage_entered_at=at, external_id=None)
        for i in range(3)
    ]

    insert_objects(Lead, leads)

    assert all(lead.pk for lead in leads) and len({lead.pk for lead in leads}) == 3
    stored = {lead.pk: lead for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads])}
    for i, lead in enumerate(leads):
        row = stored[lead.pk]
        assert row.email == f"b{i}@acme.example"
        assert row.employees == 10 * i and row.annual_revenue == Decimal("1234.50")
        assert row.attributes == {"plan": "pro", "seats": i}
        assert row.stage == Stage.MQL and row.stage_entered_at == at
        assert row.external_id is None
        assert row.updated_at is not None  # auto_now, as bulk_create sets it
    transition = StageTransition(lead_id=leads[0].pk, from_stage=Stage.LEAD, to_stage=Stage.MQL, at=at,
                                 actor_type="system", reason="score", bant={}, assignment={"team": "A"})
    insert_objects(StageTransition, [transition])
    assert StageTransition.objects.get(pk=transition.pk).assignment == {"team": "A"}


def test_a_value_too_long_is_refused_not_cut():
    with pytest.raises((DataError, IntegrityError)) if connection.vendor == "postgresql" else _stored_as_is():
        with transaction.atomic():
            insert_objects(Lead, [Lead(email="x@acme.example", first_name="y" * 101)])


class _stored_as_is:
    """SQLite does not enforce varchar lengths: there the row goes in whole, never cut."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        assert Lead.objects.get(email="x@acme.example").first_name == "y" * 101
        return False


def test_a_duplicate_email_fails_the_whole_insert():
    Lead.objects.create(email="dup@acme.example")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_objects(Lead, [Lead(email="new@acme.example"), Lead(email="dup@acme.example")])
    assert not Lead.objects.filter(email="new@acme.example").exists()


def test_ignore_conflicts_skips_the_rows_that_collide_and_keeps_the_rest():
    Lead.objects.create(email="dup@acme.example", first_name="Old")

    insert_objects(Lead, [Lead(email="dup@acme.example", first_name="New"), Lead(email="fresh@acme.example")],
                   ignore_conflicts=True)

    assert Lead.objects.get(email="dup@acme.example").first_name == "Old"
    assert Lead.objects.filter(email="fresh@acme.example").exists()
