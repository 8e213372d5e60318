"""Reads for the browser pages: the rep inbox, a lead's timeline, SLA clock colours.

Everything here starts from `leads.permissions.visible_leads`, so a page can never show a lead
its user may not read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sla import clocks
from sla.models import SlaBreach

from . import permissions
from .lifecycle.table import REASON_LABELS
from .models import Lead, Stage, StageTransition, Touch, TouchKind

INBOX_STAGES = (Stage.MQL, Stage.SAL)
TIMELINE_EVENT_LIMIT = 100
DEFAULT_WARNING_SHARE = 0.75
# Soonest deadline first; leads without a running clock last.
INBOX_ORDER = (F("sla_due_at").asc(nulls_last=True), "stage_entered_at", "id")


Refine = Callable[[QuerySet[Lead]], QuerySet[Lead]]


def inbox_leads(user, *, stage: str = "", source: str = "", refine: Refine | None = None) -> QuerySet[Lead]:
    """A rep's working list: own MQLs and SALs plus the team's unassigned MQLs, soonest
    deadline first (leads without a running clock last).

    Managers and marketers see the same shape over every open MQL/SAL, so the page works for
    them too (it is how a manager looks over the reps' shoulders).
    """
    if permissions.sees_all_leads(user):
        qs = Lead.objects.filter(stage__in=INBOX_STAGES)
    elif permissions.is_rep(user):
        qs = Lead.objects.filter(
            Q(owner=user, stage__in=INBOX_STAGES)
            | Q(owner__isnull=True, stage=Stage.MQL, team_id__in=permissions.rep_team_ids(user))
        )
    else:
        return Lead.objects.none()
    # A merged duplicate keeps its stage for the reports but is nobody's work any more.
    qs = qs.filter(merged_into__isnull=True)
    if stage:
        qs = qs.filter(stage=stage)
    if source:
        qs = qs.filter(source=source)
    if refine is not None:
        qs = refine(qs)
    return qs.select_related("owner").order_by(*INBOX_ORDER)


class InboxQuery:
    """The inbox as a few index-ordered branches instead of one OR.

    A rep's inbox is (own MQLs) + (own SALs) + (each team's unassigned MQLs). As one query with
    OR, PostgreSQL must fetch and sort every matching row before it can return the first page
    (~250 ms for a rep with 40,000 open leads). Each branch alone walks an index already in
    deadline order (`lead_inbox_idx`, `lead_team_unassigned_idx`), so a page is the merge of
    the first rows of each branch, and the count is a sum of index-only counts.

    Duck-types what `django.core.paginator.Paginator` needs: `count()` and slicing.
    """

    ordered = True

    def __init__(self, branches: list[QuerySet[Lead]], combined: QuerySet[Lead]) -> None:
        self.branches = branches
        self.combined = combined
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = sum(branch.count() for branch in self.branches)
        return self._count

    def __len__(self) -> int:
        return self.count()

    if TYPE_CHECKING:
        # Iterable through `__getitem__` (the sequence protocol), as Paginator's type requires.
        def __iter__(self) -> Iterator[Lead]: ...

    @overload
    def __getitem__(self, item: int) -> Lead: ...
    @overload
    def __getitem__(self, item: slice) -> list[Lead]: ...
    def __getitem__(self, item: int | slice) -> Lead | list[Lead]:
        if not isinstance(item, slice):
            return self[item : item + 1][0]
        start, stop = item.start or 0, item.stop
        if stop is None:
            stop = self.count()
        if stop <= start:
            return []
        if len(self.branches) == 1:
            ids = list(self.branches[0].order_by(*INBOX_ORDER).values_list("id", flat=True)[start:stop])
        elif self.branches and connection.features.supports_slicing_ordering_in_compound:
            ids = self._merged_ids(start, stop)
        else:
            ids = list(self.combined.values_list("id", flat=True)[start:stop])
        leads = Lead.objects.select_related("owner").in_bulk(ids)
        return [leads[pk] for pk in ids if pk in leads]

    def _merged_ids(self, start: int, stop: int) -> list[int]:
        # Django cannot order a UNION whose parts are sliced, so the merge is written out; each
        # part is the ORM's own SQL for one branch, limited to the rows this page could need.
        parts: list[str] = []
        params: list[Any] = []
        for branch in self.branches:
            sql, branch_params = (
                branch.order_by(*INBOX_ORDER)
                .values_list("id", "sla_due_at", "stage_entered_at")[:stop]
                .query.sql_with_params()
            )
            parts.append(f"({sql})")
            params.extend(branch_params)
        merged = (
            "SELECT id FROM (" + " UNION ALL ".join(parts) + ") AS inbox "
            "ORDER BY sla_due_at ASC NULLS LAST, stage_entered_at ASC, id ASC LIMIT %s OFFSET %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(merged, [*params, stop - start, start])
            return [row[0] for row in cursor.fetchall()]


def inbox_query(user, *, stage: str = "", source: str = "", refine: Refine | None = None) -> InboxQuery:
    """What `inbox_leads` returns, shaped for fast pages on a big table. `refine` (the page's
    search and filters) narrows every branch alike."""
    combined = inbox_leads(user, stage=stage, source=source, refine=refine)
    stages = [s for s in INBOX_STAGES if not stage or s == stage]
    if permissions.sees_all_leads(user):
        branches = [Lead.objects.filter(stage=s) for s in stages]
    elif permissions.is_rep(user):
        branches = [Lead.objects.filter(owner=user, stage=s) for s in stages]
        if Stage.MQL in stages:
            branches += [
                Lead.objects.filter(owner__isnull=True, stage=Stage.MQL, team_id=team_id)
                for team_id in permissions.rep_team_ids(user)
            ]
    else:
        branches = []
    branches = [branch.filter(merged_into__isnull=True) for branch in branches]
    if source:
        branches = [branch.filter(source=source) for branch in branches]
    if refine is not None:
        branches = [refine(branch) for branch in branches]
    return InboxQuery(branches, combined)


LIST_ORDER = ("-created_at", "-id")


def lead_list(user, *, refine: Refine | None = None, ordering: Sequence[Any] = ()) -> QuerySet[Lead]:
    """The "all leads" list: every lead the user may read (SPEC section 1), newest first unless
    the page asks for another order; `refine` applies the page's search and filters."""
    qs = permissions.visible_leads(user)
    if refine is not None:
        qs = refine(qs)
    order = [*ordering, "-id"] if ordering else list(LIST_ORDER)
    return qs.select_related("owner", "team").order_by(*order)


class SearchResults:
    """A searched lead list for the pager, in two steps that each stay cheap at a million leads.

    First the ids of up to `cap + 1` matches, in no order: one trigram bitmap scan that stops
    reading rows at the cap. That is the count ("1,000+" past the cap). Then the page:
    - few matches: those ids, sorted (a primary-key look-up of at most `cap` rows);
    - many: the list's ordinary ordered query, which walks the `created_at` index and finds a
      page of a common word's matches within a few thousand rows.
    Ordering a rare word's matches by walking that index instead reads the whole table
    (seconds), and sorting a common word's 40,000 matches reads them all (hundreds of ms).

    Duck-types what `django.core.paginator.Paginator` needs: `count()` and slicing."""

    ordered = True

    def __init__(self, queryset: QuerySet[Lead], *, cap: int) -> None:
        self.queryset, self.cap = queryset, cap
        self._ids: list[int] | None = None

    @property
    def ids(self) -> list[int]:
        if self._ids is None:
            self._ids = list(self.queryset.order_by().values_list("id", flat=True)[: self.cap + 1])
        return self._ids

    @property
    def capped(self) -> bool:
        return len(self.ids) > self.cap

    def count(self) -> int:
        return len(self.ids)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item: Any) -> Any:
        if self.capped:
            return self._dense_page(item)
        ordering = self.queryset.query.order_by
        return Lead.objects.filter(pk__in=self.ids).select_related("owner", "team").order_by(*ordering)[item]

    def _dense_page(self, item: Any) -> list[Lead]:
        """A page of a common word's matches, newest first, by walking the `created_at` index.
        pg_trgm's row estimates are far too low for common words (500 for 23,000), so the
        planner would rather fetch and sort every match (120 ms at a million leads, against
        20 ms): bitmap scans are switched off for this one statement on PostgreSQL."""
        if tuple(self.queryset.query.order_by) != LIST_ORDER or connection.vendor != "postgresql":
            return list(self.queryset[item])
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            return list(self.queryset[item])


def my_sqls(user) -> QuerySet[Lead]:
    """An account executive's open deals: the SQLs they own, oldest hand-off first."""
    return Lead.objects.filter(owner=user, stage=Stage.SQL).select_related("team").order_by("stage_entered_at", "id")


def closed_by(user, *, limit: int = 20) -> QuerySet[Lead]:
    """The AE's latest closed deals (won or lost), newest first."""
    return Lead.objects.filter(owner=user, stage__in=(Stage.WON, Stage.LOST)).order_by("-stage_entered_at", "-id")[
        :limit
    ]


def handoffs(leads: Sequence[Lead]) -> dict[int, StageTransition]:
    """Each lead's latest move into SQL: the rep's hand-off note, the BANT record, who qualified."""
    latest: dict[int, StageTransition] = {}
    rows = (
        StageTransition.objects.filter(lead_id__in=[lead.pk for lead in leads], to_stage=Stage.SQL)
        .exclude(from_stage=Stage.SQL)
        .select_related("actor")
        .order_by("at", "id")
    )
    for row in rows:
        latest[row.lead_id] = row
    return latest


def lead_sources(limit: int = 200) -> list[str]:
    """Distinct non-empty lead sources, for the inbox filter.

    A loose index scan over `lead_source_idx` (one index probe per distinct value), because a
    plain DISTINCT reads every lead: ~170 ms at a million leads against ~1 ms.
    """
    table = Lead._meta.db_table
    sql = f"""
        WITH RECURSIVE sources(source) AS (
            SELECT (SELECT source FROM {table} WHERE source > '' ORDER BY source LIMIT 1)
            UNION ALL
            SELECT (SELECT source FROM {table} WHERE source > sources.source ORDER BY source LIMIT 1)
            FROM sources WHERE sources.source IS NOT NULL
        )
        SELECT source FROM sources WHERE source IS NOT NULL LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class SlaStatus:
    """How a lead stands against its running clock, for the countdown and its colour."""

    clock: str
    label: str
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    state: str  # "ok", "warning", "breached" or "none"

    @property
    def seconds_left(self) -> int | None:
        if self.due_at is None:
            return None
        return int((self.due_at - timezone.now()).total_seconds())


class SlaClockReader:
    """Loads the active SLA policies once and answers per lead; bounded by the page size."""

    def __init__(self) -> None:
        self.policies = clocks.active_policies()
        self._calendars: dict[int, Any] = {}

    def status(self, lead: Lead, *, now: dt.datetime | None = None) -> SlaStatus:
        now = now or timezone.now()
        if lead.sla_due_at is None or lead.stage not in INBOX_STAGES:
            return SlaStatus(clock="", label="", due_at=None, warn_at=None, state="none")
        policy = self.policies.get(lead.sla_clock)
        label = lead.get_sla_clock_display() if lead.sla_clock else "SLA"
        warn_at = self._warn_at(lead, policy)
        if now >= lead.sla_due_at:
            state = "breached"
        elif lead.sla_warned_at is not None or (warn_at is not None and now >= warn_at):
            state = "warning"
        else:
            state = "ok"
        return SlaStatus(clock=lead.sla_clock, label=label, due_at=lead.sla_due_at, warn_at=warn_at, state=state)

    def _warn_at(self, lead: Lead, policy) -> dt.datetime | None:
        stored = getattr(lead, "sla_warn_at", None)
        if stored is not None:
            return stored  # set with the deadline by leads.lifecycle
        start, due = lead.stage_entered_at, lead.sla_due_at
        if policy is None:
            assert due is not None  # status() asks only for a lead whose clock runs
            return start + (due - start) * DEFAULT_WARNING_SHARE
        hours = policy.duration_hours * policy.warning_share
        if not policy.business_time:
            return start + dt.timedelta(hours=hours)
        calendar = self._calendars.get(policy.calendar_id)
        if calendar is None:
            calendar = self._calendars[policy.calendar_id] = policy.calendar.as_calendar()
        return calendar.add_business_hours(start, hours)


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # "transition", "reassignment", "touch", "event", "breach"
    title: str
    detail: str = ""
    actor: str = ""
    obj: Any = None

    @property
    def kind_label(self) -> str:
        return str(TIMELINE_KINDS.get(self.kind, self.kind))


TIMELINE_KINDS = {
    "transition": gettext_lazy("stage"),
    "reassignment": gettext_lazy("reassignment"),
    "touch": gettext_lazy("touch"),
    "event": gettext_lazy("event"),
    "breach": gettext_lazy("SLA breach"),
}


def lead_timeline(lead: Lead) -> tuple[list[TimelineEntry], int]:
    """Transitions, touches, SLA breaches and the latest events of one lead, newest first.

    Events are capped (a busy lead has thousands); the second value is how many were left out.
    """
    entries: list[TimelineEntry] = []
    for t in lead.transitions.select_related("actor").order_by("-at", "-id"):
        actor = t.actor.username if t.actor else t.get_actor_type_display()
        if t.from_stage == t.to_stage:
            new_owner = (t.assignment or {}).get("owner") or _("unassigned")
            entries.append(
                TimelineEntry(
                    at=t.at,
                    kind="reassignment",
                    title=_("Reassigned to %(owner)s") % {"owner": new_owner},
                    detail=t.note,
                    actor=actor,
                    obj=t,
                )
            )
            continue
        title = f"{Stage(t.from_stage).label} → {Stage(t.to_stage).label}"
        reason = str(REASON_LABELS.get(t.reason, t.reason.replace("_", " "))) if t.reason else ""
        detail = " · ".join(part for part in (reason, t.note) if part)
        entries.append(TimelineEntry(at=t.at, kind="transition", title=title, detail=detail, actor=actor, obj=t))
    for touch in lead.touches.select_related("user").order_by("-at"):
        entries.append(
            TimelineEntry(
                at=touch.at,
                kind="touch",
                title=f"{touch.get_kind_display()} — {touch.get_outcome_display()}",
                detail=touch.note,
                actor=touch.user.username if touch.user else "",
                obj=touch,
            )
        )
    for breach in lead.sla_breaches.select_related("policy").order_by("-detected_at"):
        entries.append(
            TimelineEntry(
                at=breach.detected_at,
                kind="breach",
                title=_("SLA breached: %(clock)s") % {"clock": breach.get_clock_display()},
                detail=_("due %(due)s; action: %(action)s")
                % {
                    "due": formats.date_format(timezone.localtime(breach.due_at), "SHORT_DATETIME_FORMAT"),
                    "action": breach.get_action_display().lower(),
                },
                actor=_("system"),
                obj=breach,
            )
        )
    event_total = lead.events.count()
    for event in lead.events.order_by("-occurred_at")[:TIMELINE_EVENT_LIMIT]:
        entries.append(
            TimelineEntry(
                at=event.occurred_at,
                kind="event",
                title=event.type.replace("_", " "),
                detail=_event_detail(event.properties),
                obj=event,
            )
        )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries, max(0, event_total - TIMELINE_EVENT_LIMIT)


def _event_detail(properties: Any) -> str:
    if not isinstance(properties, dict):
        return ""
    return ", ".join(f"{key}: {value}" for key, value in list(properties.items())[:4])


BREACH_WINDOW = dt.timedelta(days=7)


def breach_window_start(now: dt.datetime | None = None) -> dt.datetime:
    """The manager's "this week": the last seven days, so Monday morning is not empty."""
    return (now or timezone.now()) - BREACH_WINDOW


def breaches_since(since: dt.datetime) -> QuerySet:
    return (
        SlaBreach.objects.filter(detected_at__gte=since)
        .select_related("lead", "owner", "policy")
        .order_by("-detected_at", "-id")
    )


# --- The hand-off SLA: an AE's first meeting on a new SQL ---------------------------------------

AE_MEETING_BUSINESS_DAYS = 3


@dataclass(frozen=True)
class MeetingClock:
    """Where an open SQL stands against "the AE meets the lead within N business days"."""

    due_at: dt.datetime
    met_at: dt.datetime | None
    state: str  # "met", "met_late", "running" or "breached"


def ae_meeting_clocks(leads: Sequence[Lead], *, now: dt.datetime | None = None) -> dict[int, MeetingClock]:
    """The hand-off SLA (SPEC section 4, `ae_meeting`) of open SQLs, for the AE's page: due
    `AE_MEETING_BUSINESS_DAYS` business days after SQL entry on the SLA calendar in use, met by
    the first meeting logged since. Read-only and kept in its own function: the SLA clocks (the
    sweep, notifications, stored deadlines) can take it over without touching the page."""
    now = now or timezone.now()
    open_sqls = [lead for lead in leads if lead.stage == Stage.SQL]
    if not open_sqls:
        return {}
    policy = next(iter(clocks.active_policies().values()), None)
    calendar = policy.calendar.as_calendar() if policy is not None else None
    first_meeting: dict[int, dt.datetime] = {}
    entered = {lead.pk: lead.stage_entered_at for lead in open_sqls}
    for lead_id, at in (
        Touch.objects.filter(lead_id__in=list(entered), kind=TouchKind.MEETING)
        .order_by("at")
        .values_list("lead_id", "at")
    ):
        if at >= entered[lead_id] and lead_id not in first_meeting:
            first_meeting[lead_id] = at
    result: dict[int, MeetingClock] = {}
    for lead in open_sqls:
        start = lead.stage_entered_at
        if calendar is not None:
            due = calendar.add_business_hours(start, AE_MEETING_BUSINESS_DAYS * calendar.hours_per_day)
        else:
            due = start + dt.timedelta(days=AE_MEETING_BUSINESS_DAYS)
        met = first_meeting.get(lead.pk)
        result[lead.pk] = MeetingClock(due_at=due, met_at=met, state=_meeting_state(met, due, now))
    return result


def _meeting_state(met: dt.datetime | None, due: dt.datetime, now: dt.datetime) -> str:
    if met is not None:
        return "met" if met <= due else "met_late"
    return "breached" if now > due else "running"
