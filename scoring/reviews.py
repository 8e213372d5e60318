"""The quarterly review of the agreement (SPEC section 3): reminders before and after the
`review_by` date of the version in force, and the record of a review meeting.

Reminders are claimed, not just sent: one `ReviewNotice` row per version, kind and review date
(unique), written in the same transaction as the e-mails go out. A second beat run, or two at
once, finds the row and sends nothing; a failed send rolls the row back so the next run retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from leads import i18n, permissions

from .models import DefinitionReview, DefinitionState, NoticeKind, QualifiedLeadDefinition, ReviewNotice, ReviewOutcome

log = logging.getLogger(__name__)

REMIND_DAYS_BEFORE = 14
# A "keep" outcome moves the next review one quarter after the meeting.
QUARTER_DAYS = 91


def _due_kind(review_by: dt.date, today: dt.date) -> str | None:
    if today > review_by:
        return NoticeKind.OVERDUE
    if today >= review_by - dt.timedelta(days=REMIND_DAYS_BEFORE):
        return NoticeKind.DUE_SOON
    return None


def _reviewed(definition: QualifiedLeadDefinition) -> bool:
    """A review recorded in the reminder window (or later) answers the reminder."""
    assert definition.review_by is not None
    since = definition.review_by - dt.timedelta(days=REMIND_DAYS_BEFORE)
    return DefinitionReview.objects.filter(definition=definition, held_on__gte=since).exists()


def review_recipients() -> list[Any]:
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[permissions.MARKETING, permissions.SALES_MANAGER])
        .exclude(email="")
        .order_by("pk")
        .distinct()
    )
    return list(users)


def send_review_reminders(*, today: dt.date | None = None) -> ReviewNotice | None:
    """Remind marketing and sales managers of the active version's review: 14 days before
    `review_by`, and once it is overdue. The notice sent, or None (nothing due, already sent,
    or already reviewed)."""
    today = today or timezone.localdate()
    definition = QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE, review_by__isnull=False).first()
    if definition is None or definition.review_by is None:
        return None
    kind = _due_kind(definition.review_by, today)
    if kind is None or _reviewed(definition):
        return None
    recipients = review_recipients()
    try:
        with transaction.atomic():
            notice, created = ReviewNotice.objects.get_or_create(
                definition=definition, kind=kind, review_by=definition.review_by
            )
            if not created:
                return None
            link = settings.LEADFLOW_BASE_URL.rstrip("/") + reverse("agreement")
            messages = []
            locales = i18n.locales_for(user.pk for user in recipients)
            for user in recipients:
                # Each reminder in its reader's language (issue 24).
                with i18n.activated(locales[user.pk]):
                    if kind == NoticeKind.OVERDUE:
                        subject = _("The agreement v%(version)s was due for review on %(date)s")
                    else:
                        subject = _("The agreement v%(version)s is due for review on %(date)s")
                    subject = subject % {
                        "version": definition.version,
                        "date": formats.date_format(definition.review_by, "SHORT_DATE_FORMAT"),
                    }
                    body = _(
                        "Marketing and sales review the qualified-lead definition and the SLAs every quarter.\n"
                        "The agreement in force: %(link)s\n"
                        "Record the meeting (attendees, decisions, keep or change) in the admin under "
                        "Quarterly reviews."
                    ) % {"link": link}
                messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]))
            send_mass_mail(messages)
            notice.recipients = len(recipients)
            notice.save(update_fields=["recipients"])
    except IntegrityError:
        # Another run claimed the same notice at the same moment; it sends the e-mails.
        return None
    return notice


def open_review_notice() -> ReviewNotice | None:
    """The reminder to show on the dashboard: the latest sent for the active version's current
    review date, until a review is recorded."""
    definition = QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE, review_by__isnull=False).first()
    if definition is None or definition.review_by is None or _reviewed(definition):
        return None
    return (
        ReviewNotice.objects.filter(definition=definition, review_by=definition.review_by)
        .select_related("definition")
        .first()
    )


def after_review_recorded(review: DefinitionReview) -> None:
    """A "keep" outcome of the version in force sets its next review one quarter later."""
    definition = review.definition
    if review.outcome == ReviewOutcome.KEEP and definition.state == DefinitionState.ACTIVE:
        next_review = review.held_on + dt.timedelta(days=QUARTER_DAYS)
        if definition.review_by is None or next_review > definition.review_by:
            QualifiedLeadDefinition.objects.filter(pk=definition.pk).update(review_by=next_review)
