"""`leads.bulk`: bulk inserts and updates store what bulk_create and bulk_update would have stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from leads.bulk import any_of, insert_objects, insert_rows, update_rows
from leads.models import Lead, Stage, StageTransition

pytestmark = pytest.mark.django_db


def test_rows_are_stored_with_every_column_and_the_objects_get_their_pks():
    at = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)
    leads = [
        Lead(
            email=f"b{i}@acme.example",
            company="Acme",
            employees=10 * i,
            annual_revenue=Decimal("1234.50"),
            attributes={"plan": "pro", "seats": i},
            stage=Stage.MQL,
            stage_entered_at=at,
            external_id=None,
        )
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
    transition = StageTransition(
        lead_id=leads[0].pk,
        from_stage=Stage.LEAD,
        to_stage=Stage.MQL,
        at=at,
        actor_type="system",
        reason="score",
        bant={},
        assignment={"team": "A"},
    )
    insert_objects(StageTransition, [transition])
    assert StageTransition.objects.get(pk=transition.pk).assignment == {"team": "A"}


def test_a_value_too_long_is_refused_not_cut():
    refused = pytest.raises((DataError, IntegrityError)) if connection.vendor == "postgresql" else _stored_as_is()
    with refused, transaction.atomic():
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

    insert_objects(
        Lead,
        [Lead(email="dup@acme.example", first_name="New"), Lead(email="fresh@acme.example")],
        ignore_conflicts=True,
    )

    assert Lead.objects.get(email="dup@acme.example").first_name == "Old"
    assert Lead.objects.filter(email="fresh@acme.example").exists()


AWKWARD_TEXT = ['say "hi"', "back\\slash", "a,b", "{braces}", "NULL", "", "  padded  ", "Zoë 日本", "'quote'"]


def test_plain_rows_are_stored_exactly_whatever_their_text_and_get_their_pks_in_order():
    fields = [
        Lead._meta.get_field(name)
        for name in (
            "email",
            "first_name",
            "employees",
            "annual_revenue",
            "fit_score",
            "stage",
            "stage_entered_at",
            "attributes",
            "external_id",
        )
    ]
    paris = dt.timezone(dt.timedelta(hours=2))
    rows = [
        (
            f"r{i}@acme.example",
            text,
            i if i % 2 else None,
            Decimal("12.50") if i % 3 else None,
            0.25 * i,
            Stage.SAL if i % 2 else Stage.MQL,
            dt.datetime(2025, 3, 1, 12, i, tzinfo=paris),
            {"note": text} if i % 2 else {},
            None if i % 2 else f"x-{text}",
        )
        for i, text in enumerate(AWKWARD_TEXT)
    ]

    pks = insert_rows(Lead, fields, rows)

    stored = {lead.pk: lead for lead in Lead.objects.filter(pk__in=pks)}
    assert len(stored) == len(rows)
    for pk, row in zip(pks, rows, strict=True):
        assert tuple(getattr(stored[pk], field.attname) for field in fields) == row


def test_updated_rows_take_each_their_own_values_and_nothing_else_changes():
    leads = [Lead.objects.create(email=f"u{i}@acme.example", company="Keep") for i in range(len(AWKWARD_TEXT))]
    at = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)
    fields = [Lead._meta.get_field(name) for name in ("first_name", "stage_entered_at", "recycle_count", "owner_id")]

    update_rows(
        Lead,
        fields,
        [(lead.pk, text, at, i, None) for i, (lead, text) in enumerate(zip(leads, AWKWARD_TEXT, strict=False))],
    )

    for i, (lead, text) in enumerate(zip(leads, AWKWARD_TEXT, strict=False)):
        lead.refresh_from_db()
        assert (lead.first_name, lead.stage_entered_at, lead.recycle_count, lead.company) == (text, at, i, "Keep")


def test_any_of_finds_the_rows_holding_one_of_the_values_and_none_for_no_values():
    leads = [
        Lead.objects.create(email=f"k{i}@acme.example", external_id=f"x-{text}") for i, text in enumerate(AWKWARD_TEXT)
    ]
    external_id, email = Lead._meta.get_field("external_id"), Lead._meta.get_field("email")

    found = Lead.objects.filter(
        any_of(external_id, [f"x-{text}" for text in AWKWARD_TEXT[:4]]) | any_of(email, ["k8@acme.example"])
    )

    assert sorted(found.values_list("pk", flat=True)) == sorted(lead.pk for lead in leads[:4] + leads[8:])
    assert not Lead.objects.filter(any_of(email, [])).exists()
