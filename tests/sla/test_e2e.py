"""The beat task through a real Celery worker on Redis, against PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.celery import app
from leads.models import Lead, Stage
from sla.models import SlaBreach
from tests.conftest import wait_for

from .conftest import MONDAY, make_mql

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_beat_sweep_task_run_by_a_real_worker_recycles_the_breached_mql(celery_worker_process, team, policies):
    lead = make_mql(contacted=True)
    later = (MONDAY + dt.timedelta(days=30)).isoformat()

    app.send_task("sla.tasks.sla_sweep", kwargs={"now": later})

    wait_for(
        lambda: Lead.objects.filter(pk=lead.pk, stage=Stage.RECYCLED).exists(),
        timeout=60,
        what="the worker to recycle the breached MQL",
    )
    breach = SlaBreach.objects.get(lead=lead)
    assert breach.action == "recycle" and breach.detected_at.isoformat() == later
    assert celery_worker_process.poll() is None
