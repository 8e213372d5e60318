"""Bulk work has its own queue: the SLA sweep and the notifications are never behind it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

from leadflow.celery import app
from leads import lifecycle
from leads.models import Lead, Stage
from sla.models import BusinessCalendar
from sla.services import install_default_policies
from tests.conftest import start_worker, stop_worker, wait_for
from tests.factories import LeadFactory

BULK = ["scoring.tasks.rescore_all", "scoring.tasks.rescore_leads", "leads.tasks.deliver_webhook",
        "leads.tasks.redeliver_outbox", "reports.tasks.catch_up_reports"]  # fmt: skip
DEFAULT = ["sla.tasks.sla_sweep", "scoring.tasks.send_review_reminders", "scoring.tasks.send_feedback_digests",
           "reports.tasks.send_weekly_summary"]  # fmt: skip


def queue_of(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_bulk_work_goes_to_the_bulk_queue_and_the_sweep_and_notifications_to_default():
    assert {name: queue_of(name) for name in BULK} == dict.fromkeys(BULK, "bulk")
    assert {name: queue_of(name) for name in DEFAULT} == dict.fromkeys(DEFAULT, "default")


def test_the_catch_up_beat_entry_replaces_the_five_minute_rebuild():
    tasks = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks["reports.tasks.catch_up_reports"] == 60.0
    assert "reports.tasks.build_report_rollup" not in tasks


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweep_runs_while_a_bulk_rescore_is_queued(team):
    """A bulk rescore waits on its queue (its worker busy or down); the default worker still
    sweeps: the breached MQL is recycled."""
    install_default_policies(calendar=BusinessCalendar.objects.create(name="Test UTC"))
    monday = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    lead = LeadFactory(team=team)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, at=monday)
    from django.db import connection

    connection.close()
    worker = start_worker(queues="default")
    try:
        app.send_task("scoring.tasks.rescore_all")
        app.send_task("sla.tasks.sla_sweep", kwargs={"now": (monday + dt.timedelta(days=30)).isoformat()})
        wait_for(
            lambda: Lead.objects.filter(pk=lead.pk, stage=Stage.RECYCLED).exists(),
            timeout=60,
            what="the default worker to sweep while the rescore is queued",
        )
        with app.connection_for_write() as conn:
            # The rescore (and the read model catch-ups the moves enqueued) still wait there.
            assert conn.default_channel.queue_declare("bulk", passive=True).message_count >= 1
    finally:
        stop_worker(worker)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("bulk")
