"""Issue 18, point 6: the weekly digest to marketing of rejections by reason and source, with
the quarter's delivery against the commitment; sent once per marketer and week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import Actor
from reports.models import QuarterlyTarget
from scoring.feedback import send_feedback_digests
from scoring.tasks import send_feedback_digests_task
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _reject(rep, *, reason: str, source: str, at: dt.datetime) -> None:
    lead = LeadFactory(country="US", source=source)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, owner=rep, at=at)
    lead.refresh_from_db()
    lifecycle.reject(lead, actor=Actor.person(rep), reason=reason)


@pytest.fixture
def last_week_rejections(team, rep, active_spec_definition):
    # Rejections are stamped "now": the digest sent next Monday covers this week.
    now = timezone.now()
    _reject(rep, reason="no_budget", source="webinar", at=now)
    _reject(rep, reason="no_budget", source="ebook", at=now)
    _reject(rep, reason="not_a_fit", source="ebook", at=now)
    today = timezone.localdate()
    return today + dt.timedelta(days=7 - today.weekday())  # next Monday


def test_marketer_gets_rejections_by_reason_and_source_and_the_commitment(
    last_week_rejections, marketer, manager, mailoutbox
):
    monday = last_week_rejections
    quarter_day = monday - dt.timedelta(days=1)
    QuarterlyTarget.objects.create(year=quarter_day.year, quarter=(quarter_day.month - 1) // 3 + 1, qualified_leads=80)
    assert send_feedback_digests(today=monday) == 1
    (mail,) = mailoutbox
    assert mail.to == [marketer.email]
    assert "MQLs sales rejected" in mail.body and ": 3." in mail.body
    assert "No budget: 2" in mail.body and "Not a fit: 1" in mail.body
    assert "ebook: 2" in mail.body and "webinar: 1" in mail.body
    assert "of 80 committed" in mail.body


def test_running_the_digest_twice_sends_it_once(last_week_rejections, marketer, mailoutbox):
    assert send_feedback_digests(today=last_week_rejections) == 1
    assert send_feedback_digests(today=last_week_rejections) == 0
    assert len(mailoutbox) == 1


def test_the_beat_task_sends_this_weeks_digest(marketer, mailoutbox):
    assert send_feedback_digests_task() == 1
    assert "MQLs sales rejected" in mailoutbox[0].body and "no quarterly target" in mailoutbox[0].body


def test_spanish_and_romanian_marketers_read_the_digest_in_their_language(last_week_rejections, marketer, mailoutbox):
    """Issue 24: one body per language; reasons in words, never their codes."""
    from leads.models import UserProfile
    from tests.factories import make_user

    UserProfile.objects.create(user=marketer, language="es")
    romanian = make_user("marketer_ro", "marketing")
    UserProfile.objects.create(user=romanian, language="ro")
    assert send_feedback_digests(today=last_week_rejections) == 2
    by_to = {mail.to[0]: mail for mail in mailoutbox}
    spanish = by_to[marketer.email]
    assert spanish.subject.startswith("LeadFlow: MQL rechazados y compromiso, semana del ")
    assert "Por motivo:" in spanish.body and "Sin presupuesto: 2" in spanish.body and "No encaja: 1" in spanish.body
    roman = by_to[romanian.email]
    assert "După motiv:" in roman.body and "Fără buget: 2" in roman.body and "no_budget" not in roman.body
