"""SLA fixtures: the SPEC's default calendar and policies, and helpers to make MQLs at a moment."""

from __future__ import annotations

import datetime as dt

import pytest

from leads import transitions
from leads.models import SlaClock
from sla.models import BusinessCalendar, SlaPolicy
from sla.services import install_default_policies
from tests.factories import LeadFactory

UTC = dt.timezone.utc
# A Monday at 09:00 UTC: the start of a working week in the default calendar.
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _roles(request):
    """Role groups for database tests: a transactional test's flush removes the migration's rows."""
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db")
    from django.contrib.auth.models import Group

    from leads.permissions import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture
def policies(db) -> dict[str, SlaPolicy]:
    calendar = BusinessCalendar.objects.create(name="Test UTC")
    return {policy.clock: policy for policy in install_default_policies(calendar=calendar)}


def set_action(policies: dict[str, SlaPolicy], clock: str, action: str) -> None:
    policy = policies[clock]
    policy.breach_action = action
    policy.save(update_fields=["breach_action"])


def make_mql(*, at: dt.datetime = MONDAY, **fields):
    lead = LeadFactory(**fields)
    transitions.promote_to_mql(lead, actor=transitions.SYSTEM, at=at)
    lead.refresh_from_db()
    return lead


__all__ = ["MONDAY", "UTC", "SlaClock", "make_mql", "set_action"]
