"""The Monday summary: each manager gets last week's numbers once, however often beat fires."""

from __future__ import annotations

import datetime as dt

from django.core import mail

from reports.models import QuarterlyTarget, SummaryDelivery
from reports.tasks import last_week, send_weekly_summary
from sla.models import SlaBreach, SlaPolicy
from tests.factories import make_user
from tests.reports.conftest import at

NEXT_MONDAY = "2026-11-09"  # the summary of the week of 2 November


def test_last_week_is_monday_to_sunday_before_today():
    assert last_week(dt.date(2026, 11, 11)) == (dt.date(2026, 11, 2), dt.date(2026, 11, 8))


def test_manager_gets_last_weeks_efficiency_velocity_and_breaches(history, manager):
    policy = SlaPolicy.objects.get(clock="mql_decision")
    SlaBreach.objects.create(
        lead=history["c"],
        policy=policy,
        clock="mql_decision",
        stage="mql",
        due_at=at(3, 9),
        detected_at=at(3, 9, 1),
        action="notify",
    )
    assert send_weekly_summary.delay(NEXT_MONDAY).get() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [manager.email]
    assert "North America" in message.body
    # The cohort of week 1 (A, B, C, D, E) as it stands: B was accepted on the Monday after.
    assert "MQLs this week: 5; accepted (SAL): 3 (60%); reached SQL: 2 (40%)" in message.body
    assert "SLA breaches: 1." in message.body


def test_running_twice_mails_each_manager_once(history, manager):
    make_user("boss2", "sales_manager")
    send_weekly_summary.delay(NEXT_MONDAY).get()
    send_weekly_summary.delay(NEXT_MONDAY).get()
    assert sorted(m.to[0] for m in mail.outbox) == ["boss2@example.com", "manager@example.com"]
    assert SummaryDelivery.objects.count() == 2


def test_reps_get_no_summary(history, rep):
    send_weekly_summary.delay(NEXT_MONDAY).get()
    assert all(rep.email not in m.to for m in mail.outbox)


def test_manager_sets_a_quarterly_target_in_the_admin(manager, team, client):
    client.force_login(manager)
    response = client.post(
        "/admin/reports/quarterlytarget/add/",
        {"year": 2026, "quarter": 4, "team": team.pk, "qualified_leads": 920},
    )
    assert response.status_code == 302
    assert QuarterlyTarget.objects.get().qualified_leads == 920
    assert client.get("/admin/reports/quarterlytarget/").status_code == 200


def test_marketing_sees_and_sets_targets(marketer, client):
    # Issue 18 / SPEC section 1: the commitment is marketing's to set, as part of the agreement.
    client.force_login(marketer)
    assert client.get("/admin/reports/quarterlytarget/").status_code == 200
    assert client.get("/admin/reports/quarterlytarget/add/").status_code == 200


def test_a_romanian_manager_reads_the_summary_in_romanian_with_romanian_numbers(history, manager):
    """Issue 24: the summary is written in the manager's language, whoever runs the task."""
    from leads.models import UserProfile

    UserProfile.objects.create(user=manager, language="ro")
    assert send_weekly_summary.delay(NEXT_MONDAY).get() == 1
    message = mail.outbox[0]
    assert message.subject == "Rezumatul săptămânal LeadFlow: 02.11.2026 – 08.11.2026"
    assert "Bună, " in message.body and "Iată săptămâna Luni 2 Noiembrie – 8 Noiembrie 2026." in message.body
    assert "MQL-uri săptămâna aceasta: 5; acceptate (SAL): 3 (60 %); au ajuns SQL: 2 (40 %)." in message.body
    assert "Încălcări SLA: 0." in message.body


def test_a_spanish_manager_reads_the_summary_in_spanish(history, manager):
    from leads.models import UserProfile

    UserProfile.objects.create(user=manager, language="es")
    send_weekly_summary.delay(NEXT_MONDAY).get()
    message = mail.outbox[0]
    assert message.subject == "Resumen semanal de LeadFlow: 02/11/2026 – 08/11/2026"
    assert "Este es el resumen de la semana del lunes 2 de noviembre al 8 de noviembre de 2026." in message.body
    assert "MQL esta semana: 5; aceptados (SAL): 3 (60 %); llegaron a SQL: 2 (40 %)." in message.body
