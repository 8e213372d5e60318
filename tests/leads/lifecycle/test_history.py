"""Dated history written in batches (the historical import's path) matches the per-lead path."""

from __future__ import annotations

import datetime as dt

import pytest

from leads import lifecycle
from leads.models import Stage, StageTransition
from sla.models import BusinessCalendar
from sla.services import install_default_policies
from tests.factories import LeadFactory

UTC = dt.UTC
STATE = ("stage", "stage_entered_at", "owner_id", "sla_clock", "sla_due_at", "sla_warn_at", "recycle_count")


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def journeys(rep) -> list[list[lifecycle.HistoricalStep]]:
    step = lifecycle.HistoricalStep
    return [
        [step(Stage.MQL, at(2), owner_id=rep.pk), step(Stage.SAL, at(3), owner_id=rep.pk)],
        [
            step(Stage.MQL, at(2)),
            step(Stage.RECYCLED, at(4), reason="no_budget"),
            step(Stage.MQL, at(9)),
            step(Stage.RECYCLED, at(12), reason="bad_timing"),
        ],
        [step(Stage.MQL, at(2)), step(Stage.WON, at(20))],
        [],
    ]


@pytest.fixture
def policies(db):
    return install_default_policies(calendar=BusinessCalendar.objects.create(name="UTC"))


def test_batch_gives_each_lead_the_state_and_rows_the_single_path_gives(policies, rep):
    singles = [LeadFactory() for _ in range(4)]
    batched = [LeadFactory() for _ in range(4)]
    for lead, steps in zip(singles, journeys(rep), strict=True):
        lifecycle.record_history(lead, steps=steps, actor=lifecycle.SYSTEM)
    written = lifecycle.record_history_batch(list(zip(batched, journeys(rep), strict=True)), actor=lifecycle.SYSTEM)

    assert len(written) == 2 + 4 + 2
    for single, batch, journey in zip(singles, batched, journeys(rep), strict=True):
        if not journey:
            continue  # nothing written: each keeps the moment its factory created it
        single.refresh_from_db()
        batch.refresh_from_db()
        assert [getattr(batch, name) for name in STATE] == [getattr(single, name) for name in STATE]
        rows = lambda lead: list(  # noqa: E731
            StageTransition.objects.filter(lead=lead)
            .order_by("at")
            .values_list("from_stage", "to_stage", "at", "reason", "owner_id")
        )
        assert rows(batch) == rows(single)
    sal, recycled_twice, won, untouched = batched
    assert (sal.stage, sal.owner_id, sal.sla_clock) == (Stage.SAL, rep.pk, "sal_first_touch")
    assert sal.sla_due_at is not None
    assert (recycled_twice.stage, recycled_twice.recycle_count) == (Stage.RECYCLED, 2)
    assert won.stage == Stage.WON and won.sla_due_at is None
    assert untouched.stage == Stage.LEAD and not StageTransition.objects.filter(lead=untouched).exists()


def test_rerunning_a_batch_writes_nothing_and_a_lead_named_twice_is_merged(policies, rep):
    lead = LeadFactory()
    first, second = (
        [lifecycle.HistoricalStep(Stage.MQL, at(2))],
        [
            lifecycle.HistoricalStep(Stage.MQL, at(2)),
            lifecycle.HistoricalStep(Stage.SAL, at(5)),
        ],
    )
    written = lifecycle.record_history_batch([(lead, first), (lead, second)], actor=lifecycle.SYSTEM)

    assert [(row.from_stage, row.to_stage) for row in written] == [(Stage.LEAD, Stage.MQL), (Stage.MQL, Stage.SAL)]
    assert lead.stage == Stage.SAL  # the caller's instance sees the new state
    assert lifecycle.record_history_batch([(lead, second)], actor=lifecycle.SYSTEM) == []
    assert StageTransition.objects.filter(lead=lead).count() == 2


def test_a_step_without_a_time_zone_is_refused_and_nothing_is_written(policies):
    lead = LeadFactory()
    good = lifecycle.HistoricalStep(Stage.MQL, at(2))
    naive = lifecycle.HistoricalStep(Stage.SAL, dt.datetime(2026, 3, 3, 10))
    with pytest.raises(lifecycle.InvalidReason):
        lifecycle.record_history_batch([(lead, [good]), (LeadFactory(), [naive])], actor=lifecycle.SYSTEM)
    assert not StageTransition.objects.exists()


def test_a_lead_given_by_id_gets_the_same_history_as_an_instance(policies, rep):
    by_instance, by_id = LeadFactory(), LeadFactory()
    journey = journeys(rep)[0]
    lifecycle.record_history_batch([(by_instance, journey)], actor=lifecycle.SYSTEM)
    written = lifecycle.record_history_batch([(by_id.pk, journey)], actor=lifecycle.SYSTEM)

    assert [(row.lead_id, row.to_stage, row.at) for row in written] == [
        (by_id.pk, step.to_stage, step.at) for step in journey
    ]
    assert all(row.pk for row in written)
    by_instance.refresh_from_db()
    by_id.refresh_from_db()
    assert [getattr(by_id, name) for name in STATE] == [getattr(by_instance, name) for name in STATE]
