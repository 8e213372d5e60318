"""Celery tasks of the SLA app: thin wrappers around the sweep service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError

from .sweep import run_sweep


@shared_task(
    name="sla.tasks.sla_sweep",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # Beat sends one every minute; a run still busy makes the next one's claim empty, and a
    # stale message is worthless once the next minute's has been sent.
    expires=55,
)
def sla_sweep(now: str | None = None) -> dict[str, int]:
    """Beat's every-minute sweep. `now` (ISO 8601) is for tests and replays of a past moment: a
    future one is refused (`FutureMoment`); simulating is for `manage.py sla_sweep --simulate`."""
    moment = dt.datetime.fromisoformat(now) if now else None
    result = run_sweep(now=moment, simulate=False)
    return {"breached": result.breached_total, "warned": result.warned, "emails": result.emails}
