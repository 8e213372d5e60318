"""Issue 18, point 4: quarterly review records and reminders (14 days before, and overdue),
sent at most once per notice and version however often beat runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from scoring.models import DefinitionReview, NoticeKind, ReviewNotice, ReviewOutcome
from scoring.reviews import send_review_reminders
from scoring.tasks import send_review_reminders_task
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def due_on(active_spec_definition):
    review_by = timezone.localdate() + dt.timedelta(days=30)
    active_spec_definition.review_by = review_by
    active_spec_definition.save(update_fields=["review_by"])
    return review_by


def test_reminder_goes_to_marketing_and_managers_14_days_before_and_only_once(
    due_on, rep, marketer, manager, mailoutbox
):
    assert send_review_reminders(today=due_on - dt.timedelta(days=15)) is None
    notice = send_review_reminders(today=due_on - dt.timedelta(days=14))
    assert notice is not None and notice.kind == NoticeKind.DUE_SOON
    assert sorted(m.to[0] for m in mailoutbox) == sorted([marketer.email, manager.email])
    assert "due for review" in mailoutbox[0].subject
    # Beat runs again (the same day and the next): nothing more is sent.
    assert send_review_reminders(today=due_on - dt.timedelta(days=14)) is None
    assert send_review_reminders(today=due_on - dt.timedelta(days=13)) is None
    assert len(mailoutbox) == 2 and ReviewNotice.objects.count() == 1


def test_overdue_reminder_is_sent_once_after_the_review_date(due_on, mailoutbox):
    send_review_reminders(today=due_on - dt.timedelta(days=10))
    mailoutbox.clear()
    notice = send_review_reminders(today=due_on + dt.timedelta(days=1))
    assert notice.kind == NoticeKind.OVERDUE and "was due for review" in mailoutbox[0].subject
    assert send_review_reminders(today=due_on + dt.timedelta(days=2)) is None
    assert len(mailoutbox) == 2


def test_the_beat_task_twice_sends_nothing_the_second_time(active_spec_definition, mailoutbox):
    active_spec_definition.review_by = timezone.localdate()
    active_spec_definition.save(update_fields=["review_by"])
    assert send_review_reminders_task() is not None
    assert send_review_reminders_task() is None
    assert len(mailoutbox) == 2


def test_the_dashboard_shows_the_notice_to_managers_not_to_reps(client, due_on, manager, rep):
    send_review_reminders(today=due_on - dt.timedelta(days=14))
    client.force_login(manager)
    assert 'id="review-notice"' in client.get("/agreement/").content.decode()
    client.force_login(rep)
    assert 'id="review-notice"' not in client.get("/agreement/").content.decode()


def test_a_recorded_keep_review_answers_the_reminder_and_moves_the_next_review(
    client, due_on, marketer, manager, active_spec_definition, mailoutbox
):
    client.force_login(marketer)
    held_on = due_on - dt.timedelta(days=3)
    response = client.post(
        "/admin/scoring/definitionreview/add/",
        {
            "definition": active_spec_definition.pk,
            "held_on": held_on.isoformat(),
            "attendees": [marketer.pk, manager.pk],
            "decisions": "Threshold stays; revisit webinar points next quarter.",
            "outcome": ReviewOutcome.KEEP,
        },
    )
    assert response.status_code == 302
    review = DefinitionReview.objects.get()
    assert review.recorded_by == marketer and set(review.attendees.all()) == {marketer, manager}
    active_spec_definition.refresh_from_db()
    assert active_spec_definition.review_by == held_on + dt.timedelta(days=91)
    assert send_review_reminders(today=due_on + dt.timedelta(days=1)) is None
    assert mailoutbox == []


def test_users_without_an_email_or_role_get_no_reminder(due_on, mailoutbox):
    make_user("nomail", "marketing", email="")
    make_user("outsider", email="outsider@example.com")
    send_review_reminders(today=due_on)
    assert "outsider@example.com" not in [m.to[0] for m in mailoutbox]


def test_review_figures_show_delivered_vs_target_and_rejection_reasons(
    client, marketer, rep, team, active_spec_definition
):
    from leads import lifecycle
    from leads.lifecycle import Actor
    from reports.models import QuarterlyTarget
    from tests.factories import LeadFactory

    today = timezone.localdate()
    QuarterlyTarget.objects.create(year=today.year, quarter=(today.month - 1) // 3 + 1, qualified_leads=90)
    lead = LeadFactory(country="US")
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, owner=rep)
    lead.refresh_from_db()
    lifecycle.reject(lead, actor=Actor.person(rep), reason="no_budget")
    client.force_login(marketer)
    page = client.get(f"/admin/scoring/qualifiedleaddefinition/{active_spec_definition.pk}/review-figures/")
    assert page.status_code == 200
    html = page.content.decode()
    figures = html.split('id="review-figures"')[1]
    assert "MQLs delivered vs target" in figures and "<td>1 / " in figures
    assert "no_budget" in html.split('id="rejection-reasons"')[1]


def test_each_reminder_is_in_its_readers_language(due_on, marketer, manager, mailoutbox):
    """Issue 24: the marketer reads Spanish, the manager Romanian; the date in their format."""
    from django.utils import formats, translation

    from leads.models import UserProfile

    UserProfile.objects.create(user=marketer, language="es")
    UserProfile.objects.create(user=manager, language="ro")
    send_review_reminders(today=due_on - dt.timedelta(days=14))
    subjects = {m.to[0]: m.subject for m in mailoutbox}
    bodies = {m.to[0]: m.body for m in mailoutbox}
    with translation.override("es"):
        spanish_date = formats.date_format(due_on, "SHORT_DATE_FORMAT")
    assert subjects[marketer.email] == f"El acuerdo v1 debe revisarse el {spanish_date}"
    assert "Marketing y ventas revisan cada trimestre" in bodies[marketer.email]
    assert subjects[manager.email] == f"Acordul v1 trebuie revizuit pe {due_on:%d.%m.%Y}"
