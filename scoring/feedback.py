"""The weekly feedback digest to marketing: last week's rejected MQLs by reason and by source,
and the quarter's qualified leads delivered against the commitment (SPEC section 1: marketing
sees why its MQLs were rejected). One claim row per marketer and week makes a second run (or a
second worker) send nothing; a failed send gives the claim back for the retry."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from leads import i18n, permissions
from leads.lifecycle.table import REASON_LABELS
from leads.models import Stage, StageTransition
from reports.models import QuarterlyTarget

from .models import FeedbackDigestDelivery
from .selectors import rejected_mqls

log = logging.getLogger(__name__)


def _last_week(today: dt.date) -> tuple[dt.date, dt.date]:
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)


def _day(day: dt.date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def digest_text(*, date_from: dt.date, date_to: dt.date) -> str:
    """The digest's body: rejections of the week by reason and source, the quarter's delivery."""
    rows = list(rejected_mqls(date_from=date_from, date_to=date_to).values_list("reason", "lead__source"))
    by_reason = Counter(reason for reason, _source in rows)
    by_source = Counter(source or _("(no source)") for _reason, source in rows)
    quarter_start = _quarter_start(date_to)
    start = timezone.make_aware(dt.datetime.combine(quarter_start, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    delivered = StageTransition.objects.filter(to_stage=Stage.MQL, at__gte=start, at__lt=end).count()
    quarter = (quarter_start.month - 1) // 3 + 1
    promised = QuarterlyTarget.objects.filter(year=quarter_start.year, quarter=quarter).aggregate(
        total=Sum("qualified_leads")
    )["total"]
    lines = [
        _("MQLs sales rejected from %(start)s to %(end)s: %(count)d.")
        % {"start": _day(date_from), "end": _day(date_to), "count": len(rows)},
    ]
    if rows:
        lines.append(_("By reason:"))
        lines += [f"  {REASON_LABELS.get(reason, reason)}: {count}" for reason, count in by_reason.most_common()]
        lines.append(_("By source:"))
        lines += [f"  {source}: {count}" for source, count in by_source.most_common()]
    if promised:
        lines.append(
            _("This quarter so far: %(delivered)d qualified leads delivered of %(promised)d committed.")
            % {"delivered": delivered, "promised": promised}
        )
    else:
        lines.append(
            _("This quarter so far: %(delivered)d qualified leads delivered; no quarterly target is set.")
            % {"delivered": delivered}
        )
    link = settings.LEADFLOW_BASE_URL.rstrip("/") + reverse("rejected-mqls")
    lines.append(_("Every rejection with the rep's note: %(link)s") % {"link": link})
    return "\n".join(lines)


def send_feedback_digests(*, today: dt.date | None = None) -> int:
    """Mail last week's digest to every active marketer with an e-mail; how many were sent."""
    date_from, date_to = _last_week(today or timezone.localdate())
    marketers = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=permissions.MARKETING)
        .exclude(email="")
        .order_by("pk")
        .distinct()
    )
    # One body per language (issue 24): each marketer reads it in theirs.
    bodies: dict[str, str] = {}
    locales = i18n.locales_for(user.pk for user in marketers)
    sent = 0
    for user in marketers:
        try:
            with transaction.atomic():
                claim = FeedbackDigestDelivery.objects.create(user=user, week_start=date_from)
        except IntegrityError:
            continue  # sent already, by an earlier run or another worker
        locale = locales[user.pk]
        try:
            with i18n.activated(locale):
                if locale.language not in bodies:
                    bodies[locale.language] = digest_text(date_from=date_from, date_to=date_to)
                subject = _("LeadFlow: rejected MQLs and the commitment, week of %(start)s") % {
                    "start": _day(date_from)
                }
            send_mail(
                subject=subject,
                message=bodies[locale.language],
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[user.email],
            )
        except Exception:
            claim.delete()
            log.exception("feedback digest to %s failed", user.email)
            raise
        sent += 1
    return sent
