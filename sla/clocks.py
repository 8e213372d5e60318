"""SLA clocks: which clock runs for a lead in a stage, and when it is due, in business time.

The lifecycle asks this module for a lead's deadline whenever it writes a lead's state
(`deadline`, from the policies `active_terms` gives); the sweep, the browser and the API read
the same policies from here. Nothing here writes: a deadline is stored on the lead by the
lifecycle's core, and acted on by the sweep (`sla.sweep`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from leads.models import Lead, SlaClock, Stage, StageTransition, Touch, TouchKind
from leads.row_versions import unless_changed
from scoring.models import DefinitionState, QualifiedLeadDefinition

from .models import BusinessCalendar, SlaPolicy

# What a qualification needs when no qualify policy says otherwise: all four of BANT.
DEFAULT_BANT_REQUIRED = 4

# A deadline: (clock, due at, warn at); ("", None, None) when no clock runs.
Deadline = tuple[str, dt.datetime | None, dt.datetime | None]
NO_DEADLINE: Deadline = ("", None, None)

# Per process and database: the row versions of the active SLA policies and their calendars
# last read, and the policies built from those rows.
_POLICIES_SEEN: dict[Any, tuple[Any, Any]] = {}


def active_terms(*, version: bool = True, policies: bool = True) -> tuple[int | None, Mapping[str, SlaPolicy]]:
    """The agreement in force: the active definition's version and the active SLA policies by
    clock (with their calendars).

    On PostgreSQL this is one query returning the version and the row versions (``xmin``,
    ``ctid``) of the active policies and their calendars; the policies are rebuilt only when
    those changed. Any edit, by any process, writes a new row version, so it takes effect on the
    next move without an invalidation to remember. Elsewhere (SQLite: no round trips) the
    asked-for parts are read as they are.
    """
    if connection.vendor != "postgresql":
        active_version = (
            QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE)
            .values_list("version", flat=True)
            .first()
            if version
            else None
        )
        return active_version, (_read_policies() if policies else {})
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT d.version FROM {quote(QualifiedLeadDefinition._meta.db_table)} d"
            " WHERE d.state = %s ORDER BY d.version DESC LIMIT 1),"
            " (SELECT string_agg(concat_ws(':', p.id, p.xmin, p.ctid, c.id, c.xmin, c.ctid),"
            " ',' ORDER BY p.id)"
            f" FROM {quote(SlaPolicy._meta.db_table)} p"
            f" JOIN {quote(BusinessCalendar._meta.db_table)} c ON c.id = p.calendar_id"
            " WHERE p.active)",
            [DefinitionState.ACTIVE],
        )
        active_version, row_versions = cursor.fetchone()
    return active_version, unless_changed(_POLICIES_SEEN, row_versions, _read_policies)


def active_policies() -> dict[str, SlaPolicy]:
    """The active SLA policies by clock, with their calendars."""
    return dict(active_terms(version=False)[1])


def active_definition_version() -> int | None:
    return active_terms(policies=False)[0]


def _read_policies() -> dict[str, SlaPolicy]:
    return {policy.clock: policy for policy in SlaPolicy.objects.filter(active=True).select_related("calendar")}


# The clocks a touch may stop: speed to lead (the first touch) and the minimum touches.
TOUCH_CLOCKS = frozenset({SlaClock.SAL_FIRST_TOUCH, SlaClock.SAL_MIN_TOUCHES})


def deadline(
    policies: Mapping[str, SlaPolicy],
    stage: str,
    entered_at: dt.datetime | None,
    first_touch_at: dt.datetime | None,
    *,
    touches_met: bool = False,
    carried: Deadline | None = None,
    skip: frozenset[str] = frozenset(),
) -> Deadline:
    """The nearest open clock for a lead in `stage`, its deadline and its warning point, from
    the given policies.

    - MQL: accept-or-reject, and speed to lead (the first-touch clock) until the first touch.
    - SAL: qualify-or-drop, the minimum touches until `touches_met`, and speed to lead until the
      first touch: accepting is not a touch, so an MQL's running speed-to-lead deadline is
      `carried` into SAL unchanged.

    Every other clock runs from the moment the lead entered the stage. `skip` leaves out clocks
    already breached (a notify-only breach moves the lead on to its next clock)."""
    if entered_at is None:
        return NO_DEADLINE
    starts: dict[str, dt.datetime] = {}
    if stage == Stage.MQL:
        starts[SlaClock.MQL_DECISION] = entered_at
    elif stage == Stage.SAL:
        starts[SlaClock.SAL_QUALIFY] = entered_at
        minimum = policies.get(SlaClock.SAL_MIN_TOUCHES)
        if not touches_met and minimum is not None and minimum.min_calls + minimum.min_emails > 0:
            starts[SlaClock.SAL_MIN_TOUCHES] = entered_at
    else:
        return NO_DEADLINE
    if first_touch_at is None and carried is None:
        starts[SlaClock.SAL_FIRST_TOUCH] = entered_at
    candidates: list[tuple[dt.datetime, str, dt.datetime | None]] = [
        (policies[clock].due_from(start), clock, policies[clock].warn_from(start))
        for clock, start in starts.items()
        if clock in policies and clock not in skip
    ]
    if carried is not None and first_touch_at is None and carried[1] is not None and carried[0] not in skip:
        candidates.append((carried[1], carried[0], carried[2]))
    if not candidates:
        return NO_DEADLINE
    due, clock, warn = min(candidates, key=lambda item: (item[0], item[1]))
    return clock, due, warn


def active_deadline(stage: str, entered_at: dt.datetime, first_touch_at: dt.datetime | None) -> Deadline:
    """`deadline` under the active policies."""
    if stage not in (Stage.MQL, Stage.SAL):
        return NO_DEADLINE
    return deadline(active_terms(version=False)[1], stage, entered_at, first_touch_at)


def restarted(policy: SlaPolicy, now: dt.datetime) -> Deadline:
    """The clock of `policy` started again at `now` (a lead reassigned after a breach)."""
    return policy.clock, policy.due_from(now), policy.warn_from(now)


def after_notified_breach(
    clock: str, entered_at: dt.datetime, policies: Mapping[str, SlaPolicy], stage: str = Stage.SAL
) -> Deadline:
    """The clock a lead moves on to once a notify-only breach of `clock` is recorded: a missed
    first touch leaves the stage's other clocks running (an MQL's accept-or-reject; a SAL's
    minimum touches and qualify-or-drop), missed minimum touches leave qualify-or-drop; the
    stage's last clock leaves none."""
    if clock == SlaClock.SAL_FIRST_TOUCH:
        skip = frozenset({SlaClock.SAL_FIRST_TOUCH})
    elif clock == SlaClock.SAL_MIN_TOUCHES:
        skip = frozenset({SlaClock.SAL_FIRST_TOUCH, SlaClock.SAL_MIN_TOUCHES})
    else:
        return NO_DEADLINE
    return deadline(policies, stage, entered_at, None, skip=skip)


def bant_required() -> int:
    """How many of budget, authority, need and timeline the active qualify policy wants."""
    value = (
        SlaPolicy.objects.filter(clock=SlaClock.SAL_QUALIFY, active=True)
        .values_list("bant_required", flat=True)
        .first()
    )
    return DEFAULT_BANT_REQUIRED if value is None else max(0, min(4, value))


def touch_counts(lead: Lead, *, now: dt.datetime | None = None) -> tuple[SlaPolicy | None, dict[str, int]]:
    """The minimum-touches policy in force and the calls and emails that count toward it: those
    since the lead last became MQL (touches made before accepting count), within the policy's
    window."""
    policy = SlaPolicy.objects.filter(clock=SlaClock.SAL_MIN_TOUCHES, active=True).first()
    if policy is None:
        return None, {"calls": 0, "emails": 0}
    now = now or timezone.now()
    since = lead.stage_entered_at
    if lead.stage == Stage.SAL:
        became_mql = (
            StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL, at__lte=lead.stage_entered_at)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        since = became_mql or since
    since = max(since, now - dt.timedelta(days=policy.window_days))
    counts = Touch.objects.filter(lead=lead, at__gte=since).aggregate(
        calls=Count("id", filter=Q(kind=TouchKind.CALL)),
        emails=Count("id", filter=Q(kind=TouchKind.EMAIL)),
    )
    return policy, counts


def missing_touches(lead: Lead, *, now: dt.datetime | None = None) -> list[str]:
    """What the minimum-touches policy still wants before `unable_to_reach`, in words."""
    policy, counts = touch_counts(lead, now=now)
    if policy is None:
        return []
    missing = []
    if counts["calls"] < policy.min_calls:
        missing.append(
            ngettext("%(count)s of %(min)s call logged", "%(count)s of %(min)s calls logged", policy.min_calls)
            % {"count": counts["calls"], "min": policy.min_calls}
        )
    if counts["emails"] < policy.min_emails:
        missing.append(
            ngettext("%(count)s of %(min)s email logged", "%(count)s of %(min)s emails logged", policy.min_emails)
            % {"count": counts["emails"], "min": policy.min_emails}
        )
    return missing


# The API's names of the clocks (SPEC section 4), by the codes stored on leads and breaches.
API_CODES: dict[str, str] = {
    SlaClock.MQL_DECISION: "accept",
    SlaClock.SAL_FIRST_TOUCH: "first_touch",
    SlaClock.SAL_MIN_TOUCHES: "min_touches",
    SlaClock.SAL_QUALIFY: "qualify",
}
# The clocks of each open stage, in the order they are listed.
STAGE_CLOCKS: dict[str, tuple[str, ...]] = {
    Stage.MQL: (SlaClock.SAL_FIRST_TOUCH, SlaClock.MQL_DECISION),
    Stage.SAL: (SlaClock.SAL_FIRST_TOUCH, SlaClock.MQL_DECISION, SlaClock.SAL_MIN_TOUCHES, SlaClock.SAL_QUALIFY),
}


def clock_states(lead: Lead, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The lead's SLA clocks of its current MQL/SAL episode, for `GET /api/v1/leads/{id}/`:
    ``{"clock", "started_at", "due_at", "state": running | met | breached, "policy_version"}``.

    A breached clock is listed from its `SlaBreach` row (deadline and policy version recorded
    then); a clock past due that the sweep has not reached yet is "breached" too (open past due,
    never "running"). A closed stage lists the breaches of its last episode only."""
    now = now or timezone.now()
    policies = active_policies()
    became_mql = (
        StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL, at__lte=lead.stage_entered_at)
        .order_by("-at", "-id")
        .values_list("at", flat=True)
        .first()
    ) or lead.stage_entered_at
    sal_at = lead.stage_entered_at if lead.stage == Stage.SAL else None
    breaches = {
        breach.clock: breach for breach in lead.sla_breaches.filter(due_at__gte=became_mql).order_by("due_at", "id")
    }

    def started(clock: str) -> dt.datetime:
        in_sal = sal_at is not None and clock in (SlaClock.SAL_MIN_TOUCHES, SlaClock.SAL_QUALIFY)
        return sal_at if in_sal and sal_at is not None else became_mql

    listed: list[dict[str, Any]] = []
    for clock in STAGE_CLOCKS.get(lead.stage, ()):
        breach = breaches.pop(clock, None)
        if breach is not None:
            listed.append(_clock_row(clock, started(clock), breach.due_at, "breached", breach.policy_version))
            continue
        policy = policies.get(clock)
        if policy is None:
            continue
        start = started(clock)
        due = lead.sla_due_at if lead.sla_clock == clock else policy.due_from(start)
        met = (
            (clock == SlaClock.SAL_FIRST_TOUCH and lead.first_touch_at is not None)
            or (clock == SlaClock.MQL_DECISION and lead.stage == Stage.SAL)
            or (clock == SlaClock.SAL_MIN_TOUCHES and lead.sla_clock != clock and not missing_touches(lead, now=now))
        )
        past_due = due is not None and now >= due
        state = "met" if met else ("breached" if past_due else "running")
        listed.append(_clock_row(clock, start, due, state, policy.version))
    for clock, breach in breaches.items():
        listed.append(_clock_row(clock, started(clock), breach.due_at, "breached", breach.policy_version))
    return listed


def _clock_row(
    clock: str, started_at: dt.datetime | None, due_at: dt.datetime | None, state: str, version: int | None
) -> dict[str, Any]:
    return {
        "clock": API_CODES.get(clock, clock),
        "started_at": started_at,
        "due_at": due_at,
        "state": state,
        "policy_version": version,
    }


def cadence(lead: Lead, *, now: dt.datetime | None = None) -> list[str]:
    """The minimum-touches cadence of an open lead, one line per kind the policy wants: the next
    touch and when it is due ("call 2 of 3 — due today"), the wanted touches spread evenly over
    the window from the lead's MQL entry, or "calls: 3 of 3 done"."""
    if lead.stage not in (Stage.MQL, Stage.SAL):
        return []
    policy, counts = touch_counts(lead, now=now)
    if policy is None:
        return []
    now = now or timezone.now()
    start = lead.stage_entered_at
    if lead.stage == Stage.SAL:
        start = (
            StageTransition.objects.filter(lead=lead, to_stage=Stage.MQL, at__lte=lead.stage_entered_at)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        ) or start
    window = dt.timedelta(days=policy.window_days)
    today = timezone.localdate(now)
    lines = []
    for kind, done, wanted in (
        (gettext("call"), counts["calls"], policy.min_calls),
        (gettext("email"), counts["emails"], policy.min_emails),
    ):
        if wanted <= 0:
            continue
        if done >= wanted:
            lines.append(
                gettext("%(kind)s: %(done)s of %(wanted)s done") % {"kind": kind, "done": done, "wanted": wanted}
            )
            continue
        due = timezone.localdate(start + window * done / wanted)
        if due < today:
            when = gettext("overdue since %(date)s") % {"date": due.isoformat()}
        elif due == today:
            when = gettext("due today")
        elif due == today + dt.timedelta(days=1):
            when = gettext("due tomorrow")
        else:
            when = gettext("due %(date)s") % {"date": due.isoformat()}
        lines.append(
            gettext("%(kind)s %(number)s of %(wanted)s — %(when)s")
            % {"kind": kind, "number": done + 1, "wanted": wanted, "when": when}
        )
    return lines
