"""Issue 18, point 3: SLA terms are part of the signed agreement. An edit is a pending change
that applies only with both signatures; each breach names the policy version it ran under."""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import SlaClock
from sla.models import ChangeState, SlaBreach
from sla.services import PolicyChangeError, propose_policy_change, sign_policy_change
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql

pytestmark = pytest.mark.django_db


def test_a_policy_change_without_both_signatures_does_not_apply(team, manager, marketer, rep, policies):
    policy = policies[SlaClock.MQL_DECISION]
    change = propose_policy_change(policy=policy, terms={"duration_hours": 40.0}, by=manager)
    sign_policy_change(change, by=manager)
    policy.refresh_from_db()
    assert (policy.duration_hours, policy.version) == (16, 1)
    lead = make_mql(contacted=True, country="US")
    assert lead.sla_due_at == MONDAY + dt.timedelta(days=1, hours=8)  # still 16 business hours

    with pytest.raises(PolicyChangeError):
        sign_policy_change(change, by=rep)
    sign_policy_change(change, by=marketer)
    policy.refresh_from_db()
    assert (policy.duration_hours, policy.version) == (40, 2)
    change.refresh_from_db()
    assert change.state == ChangeState.APPLIED


def test_a_new_proposal_supersedes_the_pending_one_and_its_signature(manager, policies):
    policy = policies[SlaClock.MQL_DECISION]
    first = propose_policy_change(policy=policy, terms={"duration_hours": 40.0}, by=manager)
    sign_policy_change(first, by=manager)
    second = propose_policy_change(policy=policy, terms={"duration_hours": 8.0}, by=manager)
    first.refresh_from_db()
    assert first.state == ChangeState.SUPERSEDED and second.sales_signed_by is None
    with pytest.raises(PolicyChangeError, match="only a pending change"):
        sign_policy_change(first, by=manager)


def test_breach_rows_name_the_policy_version_they_were_computed_under(team, manager, marketer, policies):
    make_mql(contacted=True, country="US")
    run_sweep(now=MONDAY + dt.timedelta(days=30))
    assert list(SlaBreach.objects.values_list("policy_version", flat=True)) == [1]

    policy = policies[SlaClock.MQL_DECISION]
    change = propose_policy_change(policy=policy, terms={"duration_hours": 24.0}, by=manager)
    sign_policy_change(change, by=marketer)
    sign_policy_change(change, by=manager)
    later = MONDAY + dt.timedelta(days=35)
    make_mql(contacted=True, country="US", at=later)
    run_sweep(now=later + dt.timedelta(days=30))
    assert sorted(SlaBreach.objects.values_list("policy_version", flat=True)) == [1, 2]


def test_a_policy_added_in_the_admin_is_off_until_both_sides_sign(client, manager, marketer, policies):
    from django.urls import reverse

    from sla.models import SlaPolicy

    qualify = policies[SlaClock.SAL_QUALIFY]
    qualify.delete()
    client.force_login(manager)
    response = client.post(
        reverse("admin:sla_slapolicy_add"),
        {
            "name": "SAL: qualify or drop within 10 days",
            "stage": "sal",
            "clock": SlaClock.SAL_QUALIFY,
            "active": "on",
            "calendar": qualify.calendar_id,
            "duration_hours": "240",
            "warning_share": "0.75",
            "breach_action": "recycle",
            "min_calls": "0",
            "min_emails": "0",
            "window_days": "14",
            "bant_required": "4",
        },
    )
    assert response.status_code == 302
    added = SlaPolicy.objects.get(clock=SlaClock.SAL_QUALIFY)
    assert added.active is False
    change = added.changes.get(state=ChangeState.PENDING)
    sign_policy_change(change, by=manager)
    sign_policy_change(change, by=marketer)
    added.refresh_from_db()
    assert added.active is True and added.duration_hours == 240
