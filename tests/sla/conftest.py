"""SLA fixtures: the SPEC's default calendar and policies, and helpers to make MQLs at a moment."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from leads import lifecycle
from leads.models import SlaClock
from sla.models import BusinessCalendar, SlaPolicy
from sla.services import install_default_policies
from tests.factories import LeadFactory

UTC = dt.UTC
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


def run_together(target: Callable[[], Any], *, count: int = 2) -> tuple[list[Any], list[BaseException]]:
    """Run `target` in `count` threads released at the same instant (each with its own database
    connection); the results and the exceptions raised."""
    start = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(target())
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def make_mql(*, at: dt.datetime = MONDAY, contacted: bool = False, **fields):
    """A lead promoted to MQL at `at`. `contacted`: its owner called it in the same minute, so
    the speed-to-lead clock is met and the accept-or-reject clock is the one that runs (for
    tests about that clock and the sweep's mechanics)."""
    lead = LeadFactory(**fields)
    lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, at=at)
    if contacted:
        lifecycle.log_touch(lead, actor=lifecycle.SYSTEM, kind="call", outcome="no_answer", at=at)
    lead.refresh_from_db()
    return lead


__all__ = ["MONDAY", "UTC", "SlaClock", "make_mql", "run_together", "set_action"]
