"""Clocks in the API (issue 19, point 9): `sla_clocks` on one lead, breaches in its history
with the clock's code and the policy version they were computed under."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leads import lifecycle
from sla.sweep import run_sweep

from .conftest import MONDAY, make_mql

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_manager(manager):
    client = APIClient()
    client.force_authenticate(manager)
    return client


def _clocks(client, lead) -> dict[str, dict]:
    response = client.get(f"/api/v1/leads/{lead.pk}/")
    assert response.status_code == 200
    return {clock["clock"]: clock for clock in response.json()["sla_clocks"]}


def test_a_new_mql_lists_its_speed_to_lead_and_accept_clocks_running_with_their_policy_version(
    team, policies, as_manager
):
    lead = make_mql(at=timezone.now().replace(microsecond=0))
    clocks = _clocks(as_manager, lead)
    assert set(clocks) == {"first_touch", "accept"}
    assert clocks["first_touch"]["state"] == "running"
    assert clocks["first_touch"]["due_at"] == lead.sla_due_at.isoformat().replace("+00:00", "Z")
    assert clocks["accept"]["policy_version"] == 1


def test_a_breached_clock_is_listed_as_breached_and_appears_in_the_history_with_its_code(team, policies, as_manager):
    lead = make_mql()
    run_sweep(now=MONDAY + dt.timedelta(hours=2), notify=False)

    clocks = _clocks(as_manager, lead)
    assert clocks["first_touch"]["state"] == "breached"
    assert clocks["first_touch"]["policy_version"] == 1
    assert clocks["accept"]["state"] == "breached"  # open past its two business days: not running

    history = as_manager.get(f"/api/v1/leads/{lead.pk}/history/").json()
    assert [(b["clock"], b["policy_version"]) for b in history["sla_breaches"]] == [("first_touch", 1)]


def test_a_touch_meets_speed_to_lead_and_accepting_meets_the_accept_clock(team, policies, as_manager):
    lead = make_mql(at=timezone.now() - dt.timedelta(minutes=10))
    lifecycle.log_touch(lead, actor=lifecycle.Actor.person(lead.owner), kind="call", outcome="connected")
    lifecycle.accept(lead, actor=lifecycle.Actor.person(lead.owner))
    clocks = _clocks(as_manager, lead)
    assert clocks["first_touch"]["state"] == "met"
    assert clocks["accept"]["state"] == "met"
    assert clocks["min_touches"]["state"] == "running"
    assert clocks["qualify"]["state"] == "running"
