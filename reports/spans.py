"""Velocity's spans, measured in SQL: what each measure runs from and to (`velocity_spans`),
which clock it counts in (`velocity_clocks`: business hours on the SLA's calendar, or days), each
span's length (`span_sql`), and their count, median, p90 and share within the SLA per slice
(`distribution`, `slices`).

The velocity report reads the distributions straight from the stage history (the read model
holds counts only: percentiles stay exact).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from leads.models import SlaClock, Stage, Touch
from sla.business_days import ensure_business_days
from sla.models import SlaPolicy

from .business_hours import hours_between_sql
from .filters import ReportFilters
from .sql import epoch_seconds_sql, interpolated_percentile_sql, on_postgresql, read_connection
from .stages import entries


@dataclass(frozen=True)
class Clock:
    """What a velocity measure counts in: the SLA's hours (None without a policy) on a calendar's
    business time, or elapsed time (`calendar_id` None)."""

    hours: float | None
    calendar_id: int | None  # None: plain elapsed hours
    hours_per_day: float = 24.0  # of the calendar: a working day, for "3.1 days"


def _clocks(*kinds: str, business_days: bool = True) -> dict[str, Clock]:
    """The active SLA policy's clock of each kind (one query; each calendar's business days
    checked once, unless `business_days` is False: a rollup read measures no time)."""
    policies: dict[str, SlaPolicy] = {}
    for active in SlaPolicy.objects.select_related("calendar").filter(clock__in=kinds, active=True).order_by("pk"):
        policies.setdefault(active.clock, active)
    result, calendars = {}, {}
    for kind in kinds:
        policy = policies.get(kind)
        if policy is None:
            result[kind] = Clock(hours=None, calendar_id=None)
        elif not policy.business_time:
            result[kind] = Clock(hours=policy.duration_hours, calendar_id=None)
        else:
            if policy.calendar_id not in calendars:
                calendars[policy.calendar_id] = (
                    ensure_business_days(policy.calendar) if business_days else policy.calendar.as_calendar()
                )
            result[kind] = Clock(
                hours=policy.duration_hours,
                calendar_id=policy.calendar_id,
                hours_per_day=calendars[policy.calendar_id].hours_per_day,
            )
    return result


def velocity_clocks(*, business_days: bool = True) -> dict[str, Clock | None]:
    """What each velocity measure counts in: business hours on the SLA's calendar (decision,
    touch), or elapsed days (won: None)."""
    clocks = _clocks(SlaClock.MQL_DECISION, SlaClock.SAL_FIRST_TOUCH, business_days=business_days)
    return {"decision": clocks[SlaClock.MQL_DECISION], "touch": clocks[SlaClock.SAL_FIRST_TOUCH], "won": None}


@dataclass(frozen=True)
class Span:
    """What a velocity measures: from stage entries (the starts, entered between `first` and
    `last`) to the first of the same lead's ends at or after each (`pick="MIN"`), or the last at
    or before it (`pick="MAX"`).

    Either `rows` holds starts and ends alike and `starts` says which rows are starts (one scan
    of the stage entries), or `rows` holds only starts and `ends` is a queryset of the candidate
    ends (another table, or other entries) with a `lead_id` and an `at`: each start then looks up
    its end with one probe of that table's (lead_id, at) index, which for touches and wins costs
    less than sorting every candidate end of the range along with the starts.
    """

    rows: QuerySet
    pick: str
    first: dt.datetime
    last: dt.datetime
    starts: Q | None = None
    ends: QuerySet | None = None

    def end_at(self) -> Subquery:
        """The end of the start in the outer row: the same lead's first end at or after it
        (MIN), or its last one at or before it (MAX)."""
        assert self.ends is not None
        if self.pick == "MIN":
            candidates = self.ends.filter(at__gte=OuterRef("at")).order_by("at")
        else:
            candidates = self.ends.filter(at__lte=OuterRef("at")).order_by("-at")
        return Subquery(candidates.filter(lead_id=OuterRef("lead_id")).values("at")[:1])


def velocity_spans(filters: ReportFilters, start: dt.datetime, end: dt.datetime) -> dict[str, Span]:
    """What velocity measures, for starts in [start, end): MQL→decision ("decision"), SAL→first
    touch ("touch") and MQL→won ("won")."""
    base = entries().filter(filters.lead_q("lead__"), at__gte=start, at__lt=end)
    # A decision comes at or after its MQL entry, so after the range's start: the MQL entries of
    # the range and the decisions from its start on, in one scan.
    became_mql = Q(to_stage=Stage.MQL, at__lt=end)
    mqls_and_decisions = (
        entries().filter(filters.lead_q("lead__"), at__gte=start).filter(became_mql | Q(from_stage=Stage.MQL))
    )
    return {
        "decision": Span(rows=mqls_and_decisions, starts=became_mql, pick="MIN", first=start, last=end),
        "touch": Span(
            rows=base.filter(to_stage=Stage.SAL), pick="MIN", first=start, last=end, ends=Touch.objects.all()
        ),
        # MQL→won: from the last MQL entry before the win (the cycle that won), elapsed days. That
        # entry can be from long before the range: the won leads' MQL entries are the candidates.
        "won": Span(
            rows=base.filter(to_stage=Stage.WON),
            pick="MAX",
            first=start,
            last=end,
            ends=entries().filter(to_stage=Stage.MQL),
        ),
    }


def span_sql(span: Span, *, clock: Clock | None, keys: dict[str, str], day_key: bool = False) -> tuple[str, str, list]:
    """SQL for each span's length `x` (hours — business hours on `clock`'s calendar — or days when
    `clock` is None), its start's week `week_key` (and local day `day_key`), the rep holding the
    lead after the start (`owner_key`) and the columns of `keys` (name: lead field): the CTEs and
    the SELECT over them, and their parameters.

    Without `span.ends`, each start finds its end in one pass: starts and candidate ends in one
    stream, ordered by lead and moment, and a running MIN (or MAX) of the ends over each lead's
    rows (no look-up per start). With it, each start probes the ends' index (see `Span`).
    Business time comes from joining both moments to their UTC day.
    """
    is_start = Value(1) if span.starts is None else Case(When(span.starts, then=Value(1)), default=Value(0))
    rows = span.rows.annotate(
        end_at=span.end_at() if span.ends is not None else Value(None, output_field=DateTimeField()),
        is_start=is_start,
        # The rep holding the lead after that stage entry (recorded on the transition): no join
        # to the leads table, which would mean hashing every lead on a big database. The id, not
        # the name: the owner slice groups integers and looks the names up for its few groups.
        owner_key=F("owner_id"),
    )
    rows = rows.annotate(**{name: F(f"lead__{lead_field}") for name, lead_field in keys.items()})
    names = ["owner_key", *keys]
    columns = ", ".join(names)
    rows_sql, params = (
        rows.order_by().values_list("lead_id", "at", "is_start", "end_at", *names).query.sql_with_params()
    )
    # The week of each start, worked out once the ends are matched: only starts reach `v`, where
    # the stream of starts and ends is twice as long (and a truncation in the time zone is not free).
    # django-stubs type the result as str; since Django 4.1 it is (sql, params).
    week_sql, week_params = cast(
        "tuple[str, tuple[Any, ...]]",
        connection.ops.datetime_trunc_sql("week", "at", (), timezone.get_current_timezone_name()),
    )
    week_sql = f"{week_sql} AS week_key"
    if day_key:
        day_sql, day_params = connection.ops.datetime_cast_date_sql("at", (), timezone.get_current_timezone_name())
        week_sql, week_params = f"{week_sql}, {day_sql} AS day_key", (*week_params, *day_params)
    pg = on_postgresql()
    # Materialized when each start looks up its end, so the look-up runs once per start rather
    # than once per mention of `end_at` in the arithmetic below.
    materialized = "MATERIALIZED" if pg and span.ends is not None else ""
    stream = f"a (lead_id, at, is_start, end_at, {columns}) AS {materialized} ({rows_sql})"
    if clock is None:
        value_sql, days = "(t0 - t1) / 86400.0", ""  # MQL→won: t0 is the win, t1 the MQL entry
    elif clock.calendar_id is None:
        value_sql, days = "(t1 - t0) / 3600.0", ""
    else:
        value_sql, days = hours_between_sql(clock.calendar_id, span.first, span.last)
    # Running over each lead's rows towards the starts; among rows at the same moment the ends
    # come first, so an end at the very moment of its start counts (at or after / at or before).
    order = "at DESC, is_start" if span.pick == "MIN" else "at, is_start"
    if span.ends is None:
        window = (
            f"SELECT at, is_start, {columns}, {span.pick}(CASE WHEN is_start = 0 THEN at END)"
            f" OVER (PARTITION BY lead_id ORDER BY {order} ROWS UNBOUNDED PRECEDING) AS end_at FROM a"
        )
    else:
        window = f"SELECT at, is_start, {columns}, end_at FROM a"
    week_columns = "week_key, day_key" if day_key else "week_key"
    # Starts whose clock has not stopped yet (no decision, no touch) have no end and drop out.
    # OFFSET 0 keeps PostgreSQL from inlining `v` into `h`, which would evaluate date_part()
    # (and parse its unit) at each of the ~20 mentions of t0 and t1 rather than once per span.
    ctes = f"""{stream},
        w AS ({window}),
        v AS (
            SELECT {epoch_seconds_sql("at")} AS t0, {epoch_seconds_sql("end_at")} AS t1, {week_sql}, {columns}
            FROM w WHERE is_start = 1 AND end_at IS NOT NULL{" OFFSET 0" if pg else ""}
        )"""
    return ctes, f"SELECT {value_sql} AS x, {week_columns}, {columns} FROM v{days}", [*params, *week_params]


def distribution(span: Span, *, clock: Clock | None, sla_hours: float | None, group: str | None) -> dict:
    """Count, median, p90 and share within SLA of each span's length (`span_sql`), in one query,
    keyed by ("total", ""), ("owner", name), ("week", monday) and ("group", key)."""
    ctes, spans, params = span_sql(span, clock=clock, keys={"group_key": group} if group else {})
    return slices(
        f"WITH {ctes}, h AS {'MATERIALIZED' if on_postgresql() else ''} ({spans})",
        params,
        sla_hours=sla_hours,
        group=bool(group),
    )


def slices(spans: str, params: list, *, sla_hours: float | None, group: bool) -> dict:
    """The slices of `distribution` over `spans`: SQL that ends in a CTE `h` with a row per span
    (x, week_key, owner_key and, with `group`, group_key). The rollup slices its stored spans with
    it too, so live and rolled-up velocity interpolate their percentiles alike."""
    pg = on_postgresql()
    text = "text" if pg else "TEXT"
    within = f"AVG(CASE WHEN x <= {float(sla_hours)} THEN 1.0 ELSE 0.0 END)" if sla_hours is not None else "NULL"

    if pg:
        percentiles, picked = "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY x) AS p", "p[1], p[2]"
    else:
        percentiles = f"{interpolated_percentile_sql(0.5)} AS p50, {interpolated_percentile_sql(0.9)} AS p90"
        picked = "p50, p90"

    def by(kind: str, key: str, label: str = "k", join: str = "") -> str:
        """One slice: a group per value of `key`, labelled by `label` (cast to text) after grouping."""
        ranked = (
            ""
            if pg
            else (f", ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY x) AS rn, COUNT(*) OVER (PARTITION BY {key}) AS n")
        )
        grouped = (
            f"SELECT k, COUNT(*) AS c, {percentiles}, {within} AS share"
            f" FROM (SELECT {key} AS k, x{ranked} FROM h) {kind}_rows GROUP BY k"
        )
        return f"SELECT '{kind}', CAST({label} AS {text}), c, {picked}, share FROM ({grouped}) {kind}_groups{join}"

    selects = [
        by("total", "''"),
        # Owners are grouped by id and named afterwards, a look-up per group; no owner is "".
        by(
            "owner",
            "owner_key",
            "COALESCE(u.username, '')",
            f" LEFT JOIN {get_user_model()._meta.db_table} u ON u.id = owner_groups.k",
        ),
        by("week", "week_key"),
    ]
    if group:
        selects.append(by("group", "group_key"))
    sql = f"{spans} {' UNION ALL '.join(selects)}"
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        result = {}
        for kind, k, count, median, p90, share in cursor.fetchall():
            key = (k or "")[:10] if kind == "week" else (k or "")
            result[(kind, key)] = (count, median, p90, share)
        return result
