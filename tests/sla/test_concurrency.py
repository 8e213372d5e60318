"""Two sweeps at once (PostgreSQL, SKIP LOCKED) act on each breach exactly once."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from leads.models import Lead, Stage, StageTransition
from sla.models import SlaBreach
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_sweeps_running_together_act_on_each_breach_exactly_once(team, policies):
    leads = [make_mql(contacted=True) for _ in range(40)]
    later = MONDAY + dt.timedelta(days=30)
    results, errors = run_together(lambda: run_sweep(now=later, batch_size=4, notify=False))

    assert errors == []
    assert sum(result.breached_total for result in results) == 40
    assert Lead.objects.filter(stage=Stage.RECYCLED, recycle_count=1).count() == 40
    breaches = Counter(SlaBreach.objects.values_list("lead_id", flat=True))
    assert breaches == {lead.pk: 1 for lead in leads}
    recycles = Counter(StageTransition.objects.filter(reason="sla_expired").values_list("lead_id", flat=True))
    assert recycles == {lead.pk: 1 for lead in leads}


def test_events_for_a_lead_the_sweep_holds_are_stored_without_waiting(team, policies):
    """The sweep's claim changes no key (FOR NO KEY UPDATE): an event insert's foreign key check
    (KEY SHARE on the lead) goes through while the sweep's batch is still open."""
    import threading

    from django.db import connection, transaction

    from leads.models import Event
    from sla import due

    lead = make_mql(contacted=True)
    later = MONDAY + dt.timedelta(days=30)
    claimed = threading.Event()
    release = threading.Event()
    seen: list[list[int]] = []

    def sweep_holding_its_claim() -> None:
        try:
            with transaction.atomic():
                rows = due.due_rows(now=later, limit=10, lock=True, lead_ids=[lead.pk])
                seen.append([row["id"] for row in rows])
                claimed.set()
                release.wait(timeout=30)
        finally:
            claimed.set()
            connection.close()

    holder = threading.Thread(target=sweep_holding_its_claim)
    holder.start()
    try:
        assert claimed.wait(timeout=30)
        assert seen == [[lead.pk]]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            Event.objects.create(lead=lead, type="page_view", event_id="during-sweep", occurred_at=later)
    finally:
        release.set()
        holder.join(timeout=30)
    assert Event.objects.filter(lead=lead, event_id="during-sweep").exists()
