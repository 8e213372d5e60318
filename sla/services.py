"""SLA services: the defaults of SPEC section 4, installed once for a new site, and signed
changes of the policies in force (the SLA is part of the agreement both sides sign)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import permissions
from leads.models import SlaClock

from .models import (
    POLICY_TERM_FIELDS,
    BreachAction,
    BusinessCalendar,
    ChangeState,
    SlaPolicy,
    SlaPolicyChange,
)


class PolicyChangeError(Exception):
    """A refused SLA change action; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def policy_terms(policy: SlaPolicy) -> dict[str, Any]:
    """The policy's terms as a change records them (JSON values)."""
    return {name: getattr(policy, name) for name in POLICY_TERM_FIELDS}


def propose_policy_change(
    *, policy: SlaPolicy, terms: Mapping[str, Any], by: User | AnonymousUser
) -> SlaPolicyChange | None:
    """Record new terms for `policy` as a pending change; the policy in force stays as it is
    until both sides sign (`sign_policy_change`). A pending proposal for the same policy is
    superseded (its signatures were for other terms). None when the terms equal those in force."""
    if isinstance(by, AnonymousUser) or not (permissions.is_marketing(by) or permissions.is_manager(by)):
        raise PolicyChangeError(_("Only marketing or a sales manager proposes an SLA change."))
    proposed = {name: terms[name] for name in POLICY_TERM_FIELDS if name in terms}
    with transaction.atomic():
        current = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
        full = {**policy_terms(current), **proposed}
        SlaPolicyChange.objects.filter(policy=current, state=ChangeState.PENDING).update(state=ChangeState.SUPERSEDED)
        if full == policy_terms(current):
            return None
        return SlaPolicyChange.objects.create(policy=current, terms=full, proposed_by=by)


def sign_policy_change(change: SlaPolicyChange, *, by: User | AnonymousUser) -> SlaPolicyChange:
    """The caller signs their side of a pending change (marketing, or sales as a sales
    manager); with both signatures the terms apply and the policy's version goes up by one."""
    now = timezone.now()
    with transaction.atomic():
        change = SlaPolicyChange.objects.select_for_update().get(pk=change.pk)
        if change.state != ChangeState.PENDING:
            raise PolicyChangeError(
                _("This SLA change is %(state)s; only a pending change is signed.")
                % {"state": change.get_state_display()}
            )
        if isinstance(by, AnonymousUser):
            raise PolicyChangeError(_("Only a marketing user or a sales manager signs an SLA change."))
        superuser = by.is_superuser
        if permissions.has_role(by, permissions.MARKETING) or (superuser and change.marketing_signed_by_id is None):
            change.marketing_signed_by, change.marketing_signed_at = by, now
        elif permissions.has_role(by, permissions.SALES_MANAGER) or superuser:
            change.sales_signed_by, change.sales_signed_at = by, now
        else:
            raise PolicyChangeError(_("Only a marketing user or a sales manager signs an SLA change."))
        if change.marketing_signed_by_id is not None and change.sales_signed_by_id is not None:
            policy = SlaPolicy.objects.select_for_update().get(pk=change.policy_id)
            for name, value in change.terms.items():
                if name in POLICY_TERM_FIELDS:
                    setattr(policy, name, value)
            policy.version += 1
            policy.full_clean()
            policy.save()
            change.state = ChangeState.APPLIED
            change.applied_at = now
            change.applied_version = policy.version
        change.save()
    return change
