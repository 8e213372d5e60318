"""Admin screens: managers edit calendars and policies, marketers read them, breaches are listed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from leads.models import SlaClock
from sla.models import ChangeState, SlaPolicyChange
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql

pytestmark = pytest.mark.django_db


def test_manager_edit_of_a_policy_is_a_pending_change_applied_once_both_sides_sign(client, manager, marketer, policies):
    policy = policies[SlaClock.MQL_DECISION]
    client.force_login(manager)
    url = reverse("admin:sla_slapolicy_change", args=[policy.pk])
    page = client.get(url)
    assert page.status_code == 200
    response = client.post(
        url,
        {
            "name": policy.name,
            "stage": "mql",
            "clock": policy.clock,
            "active": "on",
            "calendar": policy.calendar_id,
            "duration_hours": "24",
            "business_time": "on",
            "warning_share": "0.5",
            "breach_action": "reassign",
            "escalate_to_manager": "on",
            "min_calls": "0",
            "min_emails": "0",
            "window_days": "14",
            "bant_required": "4",
        },
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    # Not in force yet: the SLA is part of the signed agreement.
    assert (policy.duration_hours, policy.warning_share, policy.breach_action, policy.version) == (
        16,
        0.75,
        "recycle",
        1,
    )
    change = SlaPolicyChange.objects.get(policy=policy)
    assert change.state == ChangeState.PENDING and change.terms["duration_hours"] == 24

    changes_url = reverse("admin:sla_slapolicychange_changelist")
    for signer in (manager, marketer):
        client.force_login(signer)
        client.post(changes_url, {"action": "sign", "_selected_action": [change.pk]}, follow=True)
        policy.refresh_from_db()
        if signer is manager:
            assert policy.duration_hours == 16  # one signature is not enough
    assert (policy.duration_hours, policy.warning_share, policy.breach_action, policy.version) == (
        24,
        0.5,
        "reassign",
        2,
    )
    change.refresh_from_db()
    assert change.state == ChangeState.APPLIED and change.applied_version == 2


def test_warning_share_outside_zero_and_one_is_refused_with_the_field_named(client, manager, policies):
    policy = policies[SlaClock.MQL_DECISION]
    client.force_login(manager)
    response = client.post(
        reverse("admin:sla_slapolicy_change", args=[policy.pk]),
        {
            "name": policy.name,
            "stage": "mql",
            "clock": policy.clock,
            "active": "on",
            "calendar": policy.calendar_id,
            "duration_hours": "16",
            "business_time": "on",
            "warning_share": "75",
            "breach_action": "recycle",
            "min_calls": "0",
            "min_emails": "0",
            "window_days": "14",
            "bant_required": "4",
        },
    )
    assert response.status_code == 200
    assert "Must be between 0 and 1" in response.content.decode()
    policy.refresh_from_db()
    assert policy.warning_share == 0.75


def test_marketer_reads_policies_but_cannot_change_them(client, marketer, policies):
    client.force_login(marketer)
    assert client.get(reverse("admin:sla_slapolicy_changelist")).status_code == 200
    policy = policies[SlaClock.MQL_DECISION]
    response = client.post(reverse("admin:sla_slapolicy_change", args=[policy.pk]), {"name": "x"})
    assert response.status_code == 403


def test_breaches_list_shows_the_sweeps_breaches(client, manager, team, policies):
    lead = make_mql(contacted=True)
    run_sweep(now=MONDAY + dt.timedelta(days=30), notify=False)
    client.force_login(manager)
    page = client.get(reverse("admin:sla_slabreach_changelist"))
    assert page.status_code == 200
    assert lead.email in page.content.decode()


def test_calendar_list_names_working_days(client, manager, policies):
    client.force_login(manager)
    page = client.get(reverse("admin:sla_businesscalendar_changelist"))
    assert "Mon, Tue, Wed, Thu, Fri" in page.content.decode()
