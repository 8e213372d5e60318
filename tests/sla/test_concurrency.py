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
    leads = [make_mql() for _ in range(40)]
    later = MONDAY + dt.timedelta(days=30)
    results, errors = run_together(lambda: run_sweep(now=later, batch_size=4, notify=False))

    assert errors == []
    assert sum(result.breached_total for result in results) == 40
    assert Lead.objects.filter(stage=Stage.RECYCLED, recycle_count=1).count() == 40
    breaches = Counter(SlaBreach.objects.values_list("lead_id", flat=True))
    assert breaches == {lead.pk: 1 for lead in leads}
    recycles = Counter(
        StageTransition.objects.filter(reason="sla_expired").values_list("lead_id", flat=True)
    )
    assert recycles == {lead.pk: 1 for lead in leads}
