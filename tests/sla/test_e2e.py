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


def test_beat_schedule_breaches_speed_to_lead_of_an_untouched_mql_and_the_owner_gets_one_email(
    transactional_db, team, policies, tmp_path
):
    """PostgreSQL, a real worker with its embedded beat on the real schedule (every minute): an
    MQL nobody touched within the hour breaches speed to lead, and its owner gets one e-mail."""
    import redis
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from leads.models import SlaClock
    from tests.conftest import start_worker, stop_worker

    first_touch = policies[SlaClock.SAL_FIRST_TOUCH]
    first_touch.business_time = False  # whatever the day the test runs on: one elapsed hour
    first_touch.save(update_fields=["business_time"])
    lead = make_mql(at=timezone.now() - dt.timedelta(minutes=90))
    assert lead.sla_clock == SlaClock.SAL_FIRST_TOUCH
    owner_email = lead.owner.email
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    connection.close()
    worker = start_worker(
        beat=True,
        extra_env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path),
        },
    )
    try:
        breach = wait_for(
            lambda: SlaBreach.objects.filter(lead=lead).first(),
            timeout=90,
            what="beat's sweep to breach the speed-to-lead clock",
        )
        wait_for(lambda: list(tmp_path.iterdir()), timeout=30, what="the breach e-mail")
    finally:
        stop_worker(worker)
    assert breach.clock == SlaClock.SAL_FIRST_TOUCH and not breach.simulated
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL
    mails = "\n".join(path.read_text() for path in tmp_path.iterdir())
    to_owner = [line for line in mails.splitlines() if line.startswith("To: ") and owner_email in line]
    assert len(to_owner) == 1
    assert f"/leads/{lead.pk}/" in mails
