"""Honest "within SLA": the clocks of velocity's period that have not stopped yet.

Velocity's spans (`reports.spans`) measure the clocks that stopped: a decision, a first touch.
A clock still open is no success: an open clock past its deadline is a miss, counted in the
denominator of `within_sla_rate` (SPEC section 4: "breached (decided late or open past due)"),
and one still inside its deadline is shown apart as `running`, never counted as met.

Open clocks are leads still in the stage the clock runs in, so they are counted from the leads
table in SQL, split at one moment: the latest entry whose deadline has passed by now (the
policy's deadlines grow with the start, so a bisection on the policy's own arithmetic finds it
once per report, in the policy's calendar).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from leads.models import Lead, SlaClock, Stage, Touch
from sla.models import SlaPolicy

from .filters import ReportFilters

# (kind, key) -> (open past due, running): the slices of `reports.spans.slices`.
OpenCounts = dict[tuple[str, str], tuple[int, int]]


def overdue_cutoff(policy: SlaPolicy, now: dt.datetime) -> dt.datetime:
    """The latest start whose deadline under `policy` has passed at `now` (to the second)."""
    low = now - dt.timedelta(hours=policy.duration_hours * 4 + 24 * 60)
    while policy.due_from(low) > now:  # a very long holiday: look further back
        low -= dt.timedelta(days=60)
    high = now
    while (high - low) > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if policy.due_from(middle) <= now:
            low = middle
        else:
            high = middle
    return low


def open_clocks(
    *, measure: str, filters: ReportFilters, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None
) -> OpenCounts:
    """Open past due and running clocks of velocity's `measure` ("decision": MQLs not yet
    accepted or rejected; "touch": SALs not yet touched since they were accepted) that started
    in [start, end): in total, by owner and by week of the start."""
    clock = {"decision": SlaClock.MQL_DECISION, "touch": SlaClock.SAL_FIRST_TOUCH}[measure]
    policy = SlaPolicy.objects.select_related("calendar").filter(clock=clock, active=True).first()
    if policy is None:
        return {}
    now = now or timezone.now()
    cutoff = overdue_cutoff(policy, now)
    stage = Stage.MQL if measure == "decision" else Stage.SAL
    leads = Lead.objects.filter(filters.lead_q(), stage=stage, stage_entered_at__gte=start, stage_entered_at__lt=end)
    if measure == "touch":
        touched = Touch.objects.filter(lead_id=OuterRef("pk"), at__gte=OuterRef("stage_entered_at"))
        leads = leads.filter(~Exists(touched))
    overdue, running = Q(stage_entered_at__lte=cutoff), Q(stage_entered_at__gt=cutoff)
    result: OpenCounts = {}
    total = leads.aggregate(breached=Count("pk", filter=overdue), running=Count("pk", filter=running))
    if total["breached"] or total["running"]:
        result[("total", "")] = (total["breached"], total["running"])
    by_owner = (
        leads.values("owner__username")
        .annotate(breached=Count("pk", filter=overdue), running=Count("pk", filter=running))
        .order_by()
    )
    for owner, late, open_ in by_owner.values_list("owner__username", "breached", "running"):
        result[("owner", owner or "")] = (late, open_)
    week = TruncWeek("stage_entered_at", tzinfo=timezone.get_current_timezone())
    by_week = (
        leads.annotate(week=week)
        .values("week")
        .annotate(breached=Count("pk", filter=overdue), running=Count("pk", filter=running))
        .order_by()
    )
    for monday, late, open_ in by_week.values_list("week", "breached", "running"):
        result[("week", str(monday)[:10])] = (late, open_)
    return result


def honest_share(closed: tuple | None, open_: tuple[int, int] | None) -> tuple[float | None, int, int]:
    """`within_sla_rate` over every clock of the slice: met in time ÷ (stopped + open past due);
    and the open past due and running counts. `closed` is a slice of `reports.spans.slices`."""
    count, _, _, share = closed or (0, None, None, None)
    breached, running = open_ or (0, 0)
    met = float(share) * count if share is not None else 0.0
    decided = count + breached
    return (met / decided if decided else None), breached, running


def with_open(
    stats: dict[str, Any], closed: tuple | None, open_: Mapping[tuple[str, str], tuple[int, int]], key: tuple[str, str]
) -> dict[str, Any]:
    """`stats` of a velocity measure with the honest share and the open counts added."""
    share, breached, running = honest_share(closed, open_.get(key))
    if "within_sla_rate" in stats:
        stats["within_sla_rate"] = None if share is None or stats.get("sla_hours") is None else round(share, 4)
        stats["open_past_due"] = breached
        stats["running"] = running
    return stats
