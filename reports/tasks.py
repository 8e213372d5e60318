"""The weekly summary mailed to each sales manager on Monday morning (beat, 07:00), and the
read model's catch-up."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from leadflow.celery import release_debounce
from leads import permissions
from leads.models import Team

from . import readmodel, selectors
from .models import SummaryDelivery

log = logging.getLogger(__name__)

CATCH_UP_TASK = "reports.tasks.catch_up_reports"


def last_week(today: dt.date) -> tuple[dt.date, dt.date]:
    """Monday to Sunday of the week before `today`'s week."""
    monday = today - dt.timedelta(days=today.weekday() + 7)
    return monday, monday + dt.timedelta(days=6)


def summary_sections(*, user, date_from: dt.date, date_to: dt.date) -> list[dict]:
    """One section per team the manager runs, or one for the whole company if none."""
    teams = list(Team.objects.filter(manager=user).order_by("name"))
    scopes = [(team.name, selectors.ReportFilters(team=team.pk)) for team in teams] or [
        ("All teams", selectors.ReportFilters())
    ]
    sections = []
    for name, filters in scopes:
        kwargs: dict[str, Any] = {"date_from": date_from, "date_to": date_to, "filters": filters}
        sections.append(
            {
                "name": name,
                "efficiency": selectors.efficiency(**kwargs),
                "velocity": selectors.velocity(**kwargs),
                "breaches": selectors.breaches_between(**kwargs),
            }
        )
    return sections


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def summary_text(*, user, date_from: dt.date, date_to: dt.date, sections: list[dict]) -> str:
    """The email body: plain text, one paragraph per team."""
    lines = [
        f"Hello {user.get_full_name() or user.username},",
        "",
        f"Here is the week of {date_from:%A %d %B} to {date_to:%A %d %B %Y}.",
        "",
    ]
    for section in sections:
        eff, vel, breaches = section["efficiency"], section["velocity"], section["breaches"]
        decision, touch = vel["mql_decision"], vel["sal_first_touch"]
        lines += [
            section["name"],
            f"  MQLs this week: {eff['mql']}; accepted (SAL): {eff['sal']} ({_percent(eff['mql_to_sal_rate'])});"
            f" reached SQL: {eff['sql']} ({_percent(eff['mql_to_sql_rate'])}).",
            f"  Time to accept or reject: median {_hours(decision['median_hours'])},"
            f" 90th percentile {_hours(decision['p90_hours'])};"
            f" {_percent(decision['within_sla_rate'])} within the SLA."
            + (f" ({vel['summary']})" if vel["summary"] else ""),
            f"  Time to first touch: median {_hours(touch['median_hours'])};"
            f" {_percent(touch['within_sla_rate'])} within the SLA.",
            f"  SLA breaches: {breaches['total']}.",
            "",
        ]
    lines.append("The dashboard has the detail and the CSV exports.")
    return "\n".join(lines)


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:g} business hours"


def _claim(user, week_start: dt.date) -> SummaryDelivery | None:
    """Insert the delivery row first; a second run (or a second worker) finds it and stops."""
    try:
        with transaction.atomic():
            return SummaryDelivery.objects.create(user=user, week_start=week_start)
    except IntegrityError:
        return None


def send_weekly_summaries(*, today: dt.date | None = None) -> int:
    """Mail last week's summary to every active manager with an email; returns how many were sent."""
    today = today or timezone.localdate()
    date_from, date_to = last_week(today)
    managers = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=permissions.SALES_MANAGER)
        .exclude(email="")
        .order_by("pk")
        .distinct()
    )
    sent = 0
    for user in managers:
        claim = _claim(user, date_from)
        if claim is None:
            continue
        context: dict[str, Any] = {
            "user": user,
            "date_from": date_from,
            "date_to": date_to,
            "sections": summary_sections(user=user, date_from=date_from, date_to=date_to),
        }
        try:
            send_mail(
                subject=f"LeadFlow weekly summary: {date_from:%d %b} – {date_to:%d %b %Y}",
                message=summary_text(**context),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[user.email],
            )
        except Exception:
            # Give the claim back so the retry (or next run) sends it; nothing else was written.
            claim.delete()
            log.exception("weekly summary to %s failed", user.email)
            raise
        claim.sent_at = timezone.now()
        claim.save(update_fields=["sent_at"])
        sent += 1
    return sent


@shared_task(
    name="reports.tasks.send_weekly_summary",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def send_weekly_summary(today: str | None = None) -> int:
    """Beat's Monday 07:00 run. `today` (ISO date) is for tests and replays."""
    return send_weekly_summaries(today=dt.date.fromisoformat(today) if today else None)


@shared_task(
    name="reports.tasks.catch_up_reports", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5
)
def catch_up_reports() -> dict:
    """Count the stage changes and leads the report read model has not counted yet (enqueued
    when history is written, and every minute by beat). Safe twice or in two workers at once:
    its batches take turns on the state row and count each row once."""
    # Writes committing from now on enqueue another run: this one may not see them.
    release_debounce(CATCH_UP_TASK)
    progress = readmodel.catch_up()
    return {"transitions": progress.transitions, "leads": progress.leads, "batches": progress.batches}
