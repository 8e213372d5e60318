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
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leadflow.celery import release_debounce
from leads import i18n, permissions
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
        (_("All teams"), selectors.ReportFilters())
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
    if rate is None:
        return "–"
    return _("%(value)s%%") % {"value": formats.number_format(round(rate * 100), use_l10n=True)}


def summary_text(*, user, date_from: dt.date, date_to: dt.date, sections: list[dict]) -> str:
    """The email body: plain text, one paragraph per team."""
    lines = [
        _("Hello %(name)s,") % {"name": user.get_full_name() or user.username},
        "",
        _("Here is the week of %(start)s to %(end)s.")
        % {
            # "Monday, November 2", "lunes 2 de noviembre", "Luni 2 Noiembrie": the weekday and the
            # language's own day-and-month format.
            "start": f"{formats.date_format(date_from, 'l')} {formats.date_format(date_from, 'MONTH_DAY_FORMAT')}",
            "end": formats.date_format(date_to, "DATE_FORMAT"),
        },
        "",
    ]
    for section in sections:
        eff, vel, breaches = section["efficiency"], section["velocity"], section["breaches"]
        decision, touch = vel["mql_decision"], vel["sal_first_touch"]
        lines += [
            section["name"],
            "  "
            + _("MQLs this week: %(mql)s; accepted (SAL): %(sal)s (%(sal_rate)s); reached SQL: %(sql)s (%(sql_rate)s).")
            % {
                "mql": eff["mql"],
                "sal": eff["sal"],
                "sal_rate": _percent(eff["mql_to_sal_rate"]),
                "sql": eff["sql"],
                "sql_rate": _percent(eff["mql_to_sql_rate"]),
            },
            "  "
            + _("Time to accept or reject: median %(median)s, 90th percentile %(p90)s; %(rate)s within the SLA.")
            % {
                "median": _hours(decision["median_hours"]),
                "p90": _hours(decision["p90_hours"]),
                "rate": _percent(decision["within_sla_rate"]),
            }
            + (f" ({vel['summary']})" if vel["summary"] else ""),
            "  "
            + _("Time to first touch: median %(median)s; %(rate)s within the SLA.")
            % {"median": _hours(touch["median_hours"]), "rate": _percent(touch["within_sla_rate"])},
            "  " + _("SLA breaches: %(count)s.") % {"count": breaches["total"]},
            "",
        ]
    lines.append(_("The dashboard has the detail and the CSV exports."))
    return "\n".join(lines)


def _hours(value: float | None) -> str:
    if value is None:
        return "–"
    return ngettext("%(count)s business hour", "%(count)s business hours", round(value)) % {
        "count": formats.number_format(value, use_l10n=True)
    }


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
    locales = i18n.locales_for(user.pk for user in managers)
    for user in managers:
        claim = _claim(user, date_from)
        if claim is None:
            continue
        try:
            # In the manager's language and time zone (issue 24), whoever runs the task.
            with i18n.activated(locales[user.pk]):
                context: dict[str, Any] = {
                    "user": user,
                    "date_from": date_from,
                    "date_to": date_to,
                    "sections": summary_sections(user=user, date_from=date_from, date_to=date_to),
                }
                subject = _("LeadFlow weekly summary: %(start)s – %(end)s") % {
                    "start": formats.date_format(date_from, "SHORT_DATE_FORMAT"),
                    "end": formats.date_format(date_to, "SHORT_DATE_FORMAT"),
                }
                message = summary_text(**context)
            send_mail(
                subject=subject,
                message=message,
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
