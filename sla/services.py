"""SLA set-up services: the defaults of SPEC section 4, installed once for a new site."""

from __future__ import annotations

from typing import Any

from leads.models import SlaClock

from .models import BreachAction, BusinessCalendar, SlaPolicy

# (clock, name, stage, hours, business time, action, extra fields)
DEFAULT_POLICIES: tuple[tuple[str, str, str, float, bool, str, dict[str, Any]], ...] = (
    (
        SlaClock.MQL_DECISION,
        "MQL: accept or reject within 2 business days",
        "mql",
        16.0,
        True,
        BreachAction.RECYCLE,
        {},
    ),
    (SlaClock.SAL_FIRST_TOUCH, "SAL: first touch within 1 business hour", "sal", 1.0, True, BreachAction.NOTIFY, {}),
    (
        SlaClock.SAL_MIN_TOUCHES,
        "SAL: 3 calls + 3 emails before unable to reach",
        "sal",
        14 * 24.0,
        False,
        BreachAction.NOTIFY,
        {"min_calls": 3, "min_emails": 3, "window_days": 14},
    ),
    (SlaClock.SAL_QUALIFY, "SAL: qualify or drop within 14 days", "sal", 14 * 24.0, False, BreachAction.RECYCLE, {}),
)


def install_default_policies(*, calendar: BusinessCalendar | None = None) -> list[SlaPolicy]:
    """Create the SPEC's default calendar and policies where missing; existing ones are kept."""
    if calendar is None:
        calendar, _ = BusinessCalendar.objects.get_or_create(name="Default (Mon–Fri 9–17)")
    policies = []
    for clock, name, stage, hours, business, action, extra in DEFAULT_POLICIES:
        policy, _ = SlaPolicy.objects.get_or_create(
            clock=clock,
            defaults={
                "name": name,
                "stage": stage,
                "calendar": calendar,
                "duration_hours": hours,
                "business_time": business,
                "breach_action": action,
                **extra,
            },
        )
        policies.append(policy)
    return policies
