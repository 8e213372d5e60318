"""The reports of SPEC section 5, aggregated in the database.

Each report function takes `(*, date_from, date_to, filters, group_by=None)` and returns the
JSON-ready dict of SPEC section 9; the API, the CSV export, the dashboard and the weekly email
all call these, so every surface shows the same numbers. No function iterates over leads in
Python: row sets are built with the ORM and aggregated by SQL (conditional counts, window
functions for percentiles), and business hours come from the `BusinessDay` table.

A `StageTransition` whose `from_stage == to_stage` is a reassignment, not a stage entry; every
"entered" below excludes it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, Count, DateTimeField, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import TruncWeek
from django.utils import timezone

from leads.models import Lead, SlaClock, Stage, StageTransition, Touch
from sla.business_days import UTC_DAY_SECONDS, ensure_business_days
from sla.models import BusinessDay, BusinessUtcDay, SlaBreach, SlaPolicy

from . import rollup
from .models import QuarterlyTarget
from .parallel import all_at_once, tuned

# The main line of the funnel, in order; a lead that reaches a later one has passed the earlier.
CHAIN = (Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON)
EXITS = (Stage.LOST, Stage.RECYCLED, Stage.DISQUALIFIED)
REJECTION_STAGES = (Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST)
GROUP_FIELDS = {
    "source": "source",
    "owner": "owner__username",
    "country": "country",
    "team": "team__name",
}


@dataclass(frozen=True)
class ReportFilters:
    """The filters of every report; empty means "all". `team` is a team id, `owner` a username."""

    source: str = ""
    team: int | None = None
    owner: str = ""
    country: str = ""

    def lead_q(self, prefix: str = "") -> Q:
        q = Q()
        if self.source:
            q &= Q(**{f"{prefix}source": self.source})
        if self.team is not None:
            q &= Q(**{f"{prefix}team_id": self.team})
        if self.owner:
            q &= Q(**{f"{prefix}owner__username": self.owner})
        if self.country:
            q &= Q(**{f"{prefix}country": self.country.upper()})
        return q

    def echo(self, *, date_from: dt.date, date_to: dt.date, group_by: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
        data.update(asdict(self))
        data["group_by"] = group_by
        return data


# --- Building blocks ---------------------------------------------------------------------


def _epoch_sql(column: str) -> str:
    """SQL for the seconds since the Unix epoch of a datetime column, as a float, on SQLite and
    PostgreSQL."""
    if connection.vendor == "postgresql":
        # date_part() divides the microseconds as a float, EXTRACT() as a numeric then rounded
        # to a float: the same correctly rounded number, without numeric arithmetic per row.
        return f"date_part('epoch', {column})"
    # julianday() is a float of days; rounding to the millisecond gives back the exact seconds,
    # so "exactly at the SLA" compares equal on SQLite as it does on PostgreSQL.
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


DEFAULT_RANGE_DAYS = 90


def default_range(*, date_to: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The range a report covers when none is given: the 90 days ending today (or `date_to`)."""
    end = date_to or timezone.localdate()
    return end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), end


def _bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The range's first moment and the moment after its last day, in the site's time zone."""
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _rank(stage: str) -> int:
    return CHAIN.index(stage) if stage in CHAIN else -1


def entries() -> QuerySet[StageTransition]:
    """Stage entries: every transition except reassignments."""
    return StageTransition.objects.exclude(from_stage=F("to_stage"))


def _reached_q(stage: str) -> Q:
    """An entry into `stage` or a later stage of the main line (skipping counts as passing)."""
    return Q(to_stage__in=[s for s in CHAIN if _rank(s) >= _rank(stage)])


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _group_field(group_by: str | None) -> str | None:
    if group_by is None:
        return None
    if group_by not in GROUP_FIELDS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_FIELDS)}")
    return GROUP_FIELDS[group_by]


def _key(value: Any) -> str:
    return "" if value is None else str(value)


# --- Funnel -------------------------------------------------------------------------------


def _funnel_counts(qs: QuerySet, start: dt.datetime, end: dt.datetime, group: str | None) -> list[dict]:
    # The range is the WHERE clause alone: repeating it in every FILTER cost a third of the time.
    aggregates: dict[str, Any] = {}
    for stage in CHAIN[1:]:
        # Entering a chain stage: reaching it or a later one from before it (a skip passes it).
        earlier = [s for s in CHAIN if _rank(s) < _rank(stage)] + list(EXITS)
        q = _reached_q(stage) & Q(from_stage__in=earlier)
        aggregates[stage] = Count("lead_id", distinct=True, filter=q)
    for stage in EXITS:
        aggregates[stage] = Count("lead_id", distinct=True, filter=Q(to_stage=stage))
    rows = qs.filter(at__gte=start, at__lt=end)
    if group:
        return list(rows.values(f"lead__{group}").annotate(**aggregates).order_by(f"lead__{group}"))
    return [rows.aggregate(**aggregates)]


def _created_counts(filters: ReportFilters, start: dt.datetime, end: dt.datetime, group: str | None) -> dict:
    """New leads in the range: entering the first stage is being created, not a transition."""
    qs = Lead.objects.filter(filters.lead_q(), created_at__gte=start, created_at__lt=end)
    if group:
        return {_key(row[group]): row["n"] for row in qs.values(group).annotate(n=Count("pk")).order_by()}
    return {"": qs.count()}


def _funnel_shape(row: dict) -> dict[str, Any]:
    stages = []
    for index, stage in enumerate(CHAIN):
        following = CHAIN[index + 1] if index + 1 < len(CHAIN) else None
        stages.append(
            {
                "stage": str(stage),
                "entered": row[stage],
                "to_next_rate": _rate(row[following], row[stage]) if following else None,
            }
        )
    for stage in EXITS:
        stages.append({"stage": str(stage), "entered": row[stage], "to_next_rate": None})
    return {"stages": stages}


def funnel(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Leads entering each stage in the range, and the share of them reaching the next stage."""
    group = _group_field(group_by)
    start, end = _bounds(date_from, date_to)
    result = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    empty = {stage: 0 for stage in (*CHAIN, *EXITS)}
    plan = rollup.plan(filters, [group] if group else [])
    if plan is not None:
        result.update(_funnel_shape({**empty, **rollup.funnel_counts(plan, None, date_from, date_to).get(None, {})}))
        if group:
            rows = {_key(k): row for k, row in rollup.funnel_counts(plan, group, date_from, date_to).items()}
            result["groups"] = [{"key": key, **_funnel_shape({**empty, **rows[key]})} for key in sorted(rows)]
        return result
    qs = entries().filter(filters.lead_q("lead__"))
    queries = [
        functools.partial(_funnel_counts, qs, start, end, None),
        functools.partial(_created_counts, filters, start, end, None),
    ]
    if group:
        queries += [
            functools.partial(_funnel_counts, qs, start, end, group),
            functools.partial(_created_counts, filters, start, end, group),
        ]
    entered, new_leads, *grouped = all_at_once(*queries)
    total = {**entered[0], Stage.LEAD: new_leads[""]}
    result.update(_funnel_shape(total))
    if grouped:
        entered_by_group, created = grouped
        rows = {_key(row[f"lead__{group}"]): row for row in entered_by_group}
        result["groups"] = [
            {"key": key, **_funnel_shape({**empty, **rows.get(key, {}), Stage.LEAD: created.get(key, 0)})}
            for key in sorted(set(rows) | set(created))
        ]
    return result


# --- Efficiency and sources ----------------------------------------------------------------


def _cohort_counts(filters: ReportFilters, start: dt.datetime, end: dt.datetime, keys: list[str]) -> list[dict]:
    """The cohort that became MQL in the range, counted by `keys` (lead fields): how many, and
    how many reached SAL and SQL at or after their first MQL entry in the range.

    One pass over the stage entries from the range's start on, grouped by lead: the first MQL
    entry in the range, and the last entry into SAL-or-later and SQL-or-later. A lead reached
    SAL after becoming MQL exactly when that last SAL-or-later entry is at or after its first
    MQL entry (entries before the range's start cannot be). The lead fields of `keys` are then
    joined once per cohort lead rather than once per entry.
    """
    reached_sal = [s for s in CHAIN if _rank(s) >= _rank(Stage.SAL)]
    reached_sql = [s for s in CHAIN if _rank(s) >= _rank(Stage.SQL)]
    per_lead = (
        entries().filter(filters.lead_q("lead__"), at__gte=start, to_stage__in=CHAIN[1:])
        .values("lead_id")
        .annotate(
            mql_at=Min("at", filter=Q(to_stage=Stage.MQL, at__lt=end)),
            sal_at=Max("at", filter=Q(to_stage__in=reached_sal)),
            sql_at=Max("at", filter=Q(to_stage__in=reached_sql)),
        )
        .order_by()
    )
    per_lead_sql, params = per_lead.query.sql_with_params()
    join = ""
    columns = ""
    group_by = ""
    if keys:
        aliases = {f"k{i}": F(key) for i, key in enumerate(keys)}
        lead_sql, lead_params = (
            Lead.objects.annotate(**aliases).values("id", *aliases).order_by().query.sql_with_params()
        )
        join = f" JOIN ({lead_sql}) l ON l.id = c.lead_id"
        params = (*params, *lead_params)
        columns = "".join(f"l.{alias}, " for alias in aliases)
        group_by = f" GROUP BY {', '.join('l.' + alias for alias in aliases)}"
    sql = (
        f"SELECT {columns}COUNT(*),"
        " SUM(CASE WHEN c.sal_at >= c.mql_at THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN c.sql_at >= c.mql_at THEN 1 ELSE 0 END)"
        f" FROM ({per_lead_sql}) c{join} WHERE c.mql_at IS NOT NULL{group_by}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    result = []
    for row in rows:
        values = dict(zip(keys, row[: len(keys)], strict=True))
        values.update(mql=row[-3], sal=int(row[-2] or 0), sql=int(row[-1] or 0))
        result.append(values)
    return result


def _cohort_counter(filters: ReportFilters, fields: list[str], date_from: dt.date, date_to: dt.date):
    """`_cohort_counts`, or the same rows from the rollup when it can answer (one query each
    there, so they run one after the other)."""
    plan = rollup.plan(filters, fields)
    if plan is None:
        return _cohort_counts

    def from_rollup(filters, start, end, keys):
        return rollup.cohort_counts(plan, keys, date_from, date_to)

    from_rollup.cheap = True  # type: ignore[attr-defined]
    return from_rollup


def _efficiency_shape(row: dict) -> dict[str, Any]:
    return {
        "mql": row["mql"],
        "sal": row["sal"],
        "sql": row["sql"],
        "mql_to_sal_rate": _rate(row["sal"], row["mql"]),
        "sal_to_sql_rate": _rate(row["sql"], row["sal"]),
        "mql_to_sql_rate": _rate(row["sql"], row["mql"]),
    }


def efficiency(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Of the leads that became MQL in the range, how many reached SAL and SQL (SQL ÷ MQL)."""
    group = _group_field(group_by)
    start, end = _bounds(date_from, date_to)
    result = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    counts = _cohort_counter(filters, [group] if group else [], date_from, date_to)
    total, *grouped = all_at_once(
        functools.partial(counts, filters, start, end, []),
        *([functools.partial(counts, filters, start, end, [group])] if group else []),
    )
    result.update(_efficiency_shape(total[0]))
    if grouped:
        rows = sorted(grouped[0], key=lambda r: _key(r[group]))
        result["groups"] = [{"key": _key(row[group]), **_efficiency_shape(row)} for row in rows]
    return result


def _source_rows(rows: list[dict]) -> list[dict]:
    ordered = sorted(rows, key=lambda r: (-r["mql"], r["source"]))
    return [
        {"source": row["source"], "mql": row["mql"], "sql": row["sql"],
         "mql_to_sql_rate": _rate(row["sql"], row["mql"])}
        for row in ordered
    ]


def sources(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """MQL volume and MQL→SQL efficiency by source (most MQLs first)."""
    group = _group_field(group_by)
    start, end = _bounds(date_from, date_to)
    counts = _cohort_counter(filters, [group, "source"] if group else ["source"], date_from, date_to)
    by_source, *grouped = all_at_once(
        functools.partial(counts, filters, start, end, ["source"]),
        *([functools.partial(counts, filters, start, end, [group, "source"])] if group else []),
    )
    result: dict[str, Any] = {
        "filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by),
        "sources": _source_rows(by_source),
    }
    if grouped:
        split: dict[str, list] = {}
        for row in grouped[0]:
            split.setdefault(_key(row[group]), []).append(row)
        result["groups"] = [{"key": key, "sources": _source_rows(split[key])} for key in sorted(split)]
    return result


# --- Business hours in SQL ----------------------------------------------------------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if _pg() else f"MIN({a}, {b})"


def _day_number_sql(epoch_sql: str) -> str:
    """The `BusinessUtcDay.number` of a moment (epoch seconds). SQLite's CAST truncates, which
    is the floor for every moment after 1970; earlier ones find no UTC day and fall back."""
    if _pg():
        return f"CAST(FLOOR({epoch_sql} / {UTC_DAY_SECONDS}.0) AS integer)"
    return f"CAST({epoch_sql} / {UTC_DAY_SECONDS}.0 AS INTEGER)"


def _probe_worked_before(epoch_sql: str, calendar_id: int) -> str:
    """SQL for the calendar's working seconds before the moment `epoch_sql` (seconds): the
    latest working interval starting at or before it, found by an index probe."""
    return (
        "COALESCE((SELECT bd.seconds_before + "
        + _least(f"{epoch_sql} - bd.start_epoch", "bd.end_epoch - bd.start_epoch")
        + f" FROM {BusinessDay._meta.db_table} bd WHERE bd.calendar_id = {int(calendar_id)}"
        f" AND bd.start_epoch <= {epoch_sql} ORDER BY bd.start_epoch DESC LIMIT 1), 0)"
    )


def _worked_before(epoch_sql: str, day: str, calendar_id: int) -> str:
    """The same number from the moment's UTC day `day` (joined on its number): the latest of
    the intervals starting inside it that has started, else the one in force when it began. A
    moment with no UTC day (before the calendar's first or after its last working day) takes
    the probe."""
    def interval(prefix: str) -> str:
        start = f"{day}.{prefix}_start"
        return f"{day}.{prefix}_before + " + _least(f"{epoch_sql} - {start}", f"{day}.{prefix}_end - {start}")

    return (
        f"(CASE WHEN {day}.later_start <= {epoch_sql} THEN {interval('later')}"
        f" WHEN {day}.next_start <= {epoch_sql} THEN {interval('next')}"
        f" WHEN {day}.anchor_start <= {epoch_sql} THEN {interval('anchor')}"
        f" ELSE {_probe_worked_before(epoch_sql, calendar_id)} END)"
    )


@dataclass(frozen=True)
class _Clock:
    hours: float | None
    calendar_id: int | None  # None: plain elapsed hours
    hours_per_day: float = 24.0  # of the calendar: a working day, for "3.1 days"


def _clocks(*kinds: str, business_days: bool = True) -> dict[str, _Clock]:
    """The active SLA policy's clock of each kind (one query; each calendar's business days
    checked once, unless `business_days` is False: a rollup read measures no time)."""
    policies: dict[str, SlaPolicy] = {}
    for policy in SlaPolicy.objects.select_related("calendar").filter(clock__in=kinds, active=True).order_by("pk"):
        policies.setdefault(policy.clock, policy)
    result, calendars = {}, {}
    for kind in kinds:
        policy = policies.get(kind)
        if policy is None:
            result[kind] = _Clock(hours=None, calendar_id=None)
        elif not policy.business_time:
            result[kind] = _Clock(hours=policy.duration_hours, calendar_id=None)
        else:
            if policy.calendar_id not in calendars:
                calendars[policy.calendar_id] = (
                    ensure_business_days(policy.calendar) if business_days else policy.calendar.as_calendar()
                )
            result[kind] = _Clock(hours=policy.duration_hours, calendar_id=policy.calendar_id,
                                  hours_per_day=calendars[policy.calendar_id].hours_per_day)
    return result


def velocity_clocks(*, business_days: bool = True) -> dict[str, _Clock | None]:
    """What each velocity measure counts in: business hours on the SLA's calendar (decision,
    touch), or elapsed days (won: None)."""
    clocks = _clocks(SlaClock.MQL_DECISION, SlaClock.SAL_FIRST_TOUCH, business_days=business_days)
    return {"decision": clocks[SlaClock.MQL_DECISION], "touch": clocks[SlaClock.SAL_FIRST_TOUCH], "won": None}


# --- Percentiles --------------------------------------------------------------------------


def _interpolated_sql(p: float) -> str:
    """SQLite's percentile_cont(p) over `x` in each group of a slice's rows (`rn`, `n`: see
    `_distribution`): the linear interpolation at position 1 + p·(n−1), between the row at its
    floor and the next one. PostgreSQL uses its own, both fractions in one call so each group is
    sorted once rather than twice."""
    pos = f"(1 + {p} * (n - 1))"
    lo = f"CAST({pos} AS INTEGER)"
    return (
        f"(MAX(CASE WHEN rn = {lo} THEN x END) + ({pos} - {lo}) * "
        f"(COALESCE(MAX(CASE WHEN rn = {lo} + 1 THEN x END), MAX(CASE WHEN rn = {lo} THEN x END))"
        f" - MAX(CASE WHEN rn = {lo} THEN x END)))"
    )


@dataclass(frozen=True)
class _Span:
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


def _span_sql(span: _Span, *, clock: _Clock | None, keys: dict[str, str], day_key: bool = False) -> tuple[str, str, list]:
    """SQL for each span's length `x` (hours — business hours on `clock`'s calendar — or days when
    `clock` is None), its start's week `week_key` (and local day `day_key`), the rep holding the
    lead after the start (`owner_key`) and the columns of `keys` (name: lead field): the CTEs and
    the SELECT over them, and their parameters.

    Without `span.ends`, each start finds its end in one pass: starts and candidate ends in one
    stream, ordered by lead and moment, and a running MIN (or MAX) of the ends over each lead's
    rows (no look-up per start). With it, each start probes the ends' index (see `_Span`).
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
    week_sql, week_params = connection.ops.datetime_trunc_sql(
        "week", "at", (), timezone.get_current_timezone_name()
    )
    week_sql = f"{week_sql} AS week_key"
    if day_key:
        day_sql, day_params = connection.ops.datetime_cast_date_sql("at", (), timezone.get_current_timezone_name())
        week_sql, week_params = f"{week_sql}, {day_sql} AS day_key", (*week_params, *day_params)
    pg = _pg()
    # Materialized when each start looks up its end, so the look-up runs once per start rather
    # than once per mention of `end_at` in the arithmetic below.
    materialized = "MATERIALIZED" if pg and span.ends is not None else ""
    stream = f"a (lead_id, at, is_start, end_at, {columns}) AS {materialized} ({rows_sql})"
    if clock is None:
        value_sql, days = "(t0 - t1) / 86400.0", ""  # MQL→won: t0 is the win, t1 the MQL entry
    elif clock.calendar_id is None:
        value_sql, days = "(t1 - t0) / 3600.0", ""
    else:
        calendar = int(clock.calendar_id)
        value_sql = (
            f"(({_worked_before('t1', 'd1', calendar)}) - ({_worked_before('t0', 'd0', calendar)})) / 3600.0"
        )
        # Only the days the moments can fall in, so the hash tables stay small: starts lie in
        # the range, ends after its start. A moment outside them still gets its exact value.
        first = int(span.first.timestamp() // UTC_DAY_SECONDS) - 1
        last = int(span.last.timestamp() // UTC_DAY_SECONDS) + 1
        table = BusinessUtcDay._meta.db_table
        days = (
            f" LEFT JOIN {table} d0 ON d0.calendar_id = {calendar} AND d0.number BETWEEN {first} AND {last}"
            f" AND d0.number = {_day_number_sql('t0')}"
            f" LEFT JOIN {table} d1 ON d1.calendar_id = {calendar} AND d1.number >= {first}"
            f" AND d1.number = {_day_number_sql('t1')}"
        )
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
            SELECT {_epoch_sql('at')} AS t0, {_epoch_sql('end_at')} AS t1, {week_sql}, {columns}
            FROM w WHERE is_start = 1 AND end_at IS NOT NULL{' OFFSET 0' if pg else ''}
        )"""
    return ctes, f"SELECT {value_sql} AS x, {week_columns}, {columns} FROM v{days}", [*params, *week_params]


def _distribution(span: _Span, *, clock: _Clock | None, sla_hours: float | None, group: str | None) -> dict:
    """Count, median, p90 and share within SLA of each span's length (`_span_sql`), in one query,
    keyed by ("total", ""), ("owner", name), ("week", monday) and ("group", key)."""
    ctes, spans, params = _span_sql(span, clock=clock, keys={"group_key": group} if group else {})
    return _slices(f"WITH {ctes}, h AS {'MATERIALIZED' if _pg() else ''} ({spans})", params,
                   sla_hours=sla_hours, group=bool(group))


def _slices(spans: str, params: list, *, sla_hours: float | None, group: bool) -> dict:
    """The slices of `_distribution` over `spans`: SQL that ends in a CTE `h` with a row per span
    (x, week_key, owner_key and, with `group`, group_key)."""
    pg = _pg()
    text = "text" if pg else "TEXT"
    within = (
        f"AVG(CASE WHEN x <= {float(sla_hours)} THEN 1.0 ELSE 0.0 END)" if sla_hours is not None else "NULL"
    )

    if pg:
        percentiles, picked = "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY x) AS p", "p[1], p[2]"
    else:
        percentiles, picked = f"{_interpolated_sql(0.5)} AS p50, {_interpolated_sql(0.9)} AS p90", "p50, p90"

    def by(kind: str, key: str, label: str = "k", join: str = "") -> str:
        """One slice: a group per value of `key`, labelled by `label` (cast to text) after grouping."""
        ranked = "" if pg else (
            f", ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY x) AS rn, COUNT(*) OVER (PARTITION BY {key}) AS n"
        )
        grouped = (
            f"SELECT k, COUNT(*) AS c, {percentiles}, {within} AS share"
            f" FROM (SELECT {key} AS k, x{ranked} FROM h) {kind}_rows GROUP BY k"
        )
        return f"SELECT '{kind}', CAST({label} AS {text}), c, {picked}, share FROM ({grouped}) {kind}_groups{join}"

    slices = [
        by("total", "''"),
        # Owners are grouped by id and named afterwards, a look-up per group; no owner is "".
        by("owner", "owner_key", "COALESCE(u.username, '')",
           f" LEFT JOIN {get_user_model()._meta.db_table} u ON u.id = owner_groups.k"),
        by("week", "week_key"),
    ]
    if group:
        slices.append(by("group", "group_key"))
    sql = f"{spans} {' UNION ALL '.join(slices)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = {}
        for kind, k, count, median, p90, share in cursor.fetchall():
            key = (k or "")[:10] if kind == "week" else (k or "")
            result[(kind, key)] = (count, median, p90, share)
        return result


def _stats(entry: tuple | None, *, unit: str, sla_hours: float | None) -> dict[str, Any]:
    count, median, p90, share = entry or (0, None, None, None)
    data: dict[str, Any] = {
        f"median_{unit}": None if median is None else round(float(median), 2),
        f"p90_{unit}": None if p90 is None else round(float(p90), 2),
        "count": count,
    }
    if unit == "hours":
        data["sla_hours"] = sla_hours
        data["within_sla_rate"] = None if share is None else round(float(share), 4)
    return data


def plain_verdict(*, median_hours: float | None, sla_hours: float | None, hours_per_day: float) -> str:
    """"median 3.1 days against a 2-day SLA" when the median is over the SLA, in working days."""
    if median_hours is None or sla_hours is None:
        return ""
    median_days = median_hours / hours_per_day
    sla_days = sla_hours / hours_per_day
    sla_text = f"{sla_days:g}-day" if sla_hours >= hours_per_day else f"{sla_hours:g}-hour"
    if median_hours > sla_hours:
        if median_hours >= hours_per_day:
            return f"median {median_days:.1f} days against a {sla_text} SLA"
        return f"median {median_hours:.1f} hours against a {sla_text} SLA"
    return f"median within the {sla_text} SLA"


def velocity(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Time from MQL to accept/reject and from SAL to first touch (business hours, against the
    SLA), and MQL→won in days; overall, by owner, by week of the stage entry, and by group."""
    group = _group_field(group_by)
    start, end = _bounds(date_from, date_to)
    plan = rollup.plan(filters, [group] if group else [])
    clocks = velocity_clocks(business_days=plan is None)  # the rollup's spans are measured already
    decision_clock, touch_clock = clocks["decision"], clocks["touch"]
    sla_hours = {"decision": decision_clock.hours, "touch": touch_clock.hours, "won": None}
    if plan is not None:
        # From the rollup: the measures its bins can answer in one go, the others by sorting.
        cuts = {name: (rollup.span_bins(plan, name, sla_hours[name]), sla_hours[name]) for name in clocks}
        binned = {name: cut for name, cut in cuts.items() if cut[0] is not None}
        queries = [functools.partial(rollup.distributions, plan, binned, group, date_from, date_to)]
        queries += [
            functools.partial(rollup.distribution, plan, name, group, date_from, date_to, sla_hours=sla_hours[name])
            for name in clocks if name not in binned
        ]
        results = all_at_once(*queries)
        sorted_ = iter(results[1:])
        results = [results[0][name] if name in binned else next(sorted_) for name in clocks]
    else:
        queries = [
            functools.partial(_distribution, span, clock=clocks[name], sla_hours=sla_hours[name], group=group)
            for name, span in velocity_spans(filters, start, end).items()
        ]
        results = all_at_once(*queries)
    decisions, touches, wins = results

    def block(kind: str, key: str) -> dict[str, Any]:
        return {
            "mql_decision": _stats(decisions.get((kind, key)), unit="hours", sla_hours=decision_clock.hours),
            "sal_first_touch": _stats(touches.get((kind, key)), unit="hours", sla_hours=touch_clock.hours),
            "mql_to_won": _stats(wins.get((kind, key)), unit="days", sla_hours=None),
        }

    def keys(kind: str) -> list[str]:
        return sorted({k for source in (decisions, touches, wins) for (kd, k) in source if kd == kind})

    hours_per_day = decision_clock.hours_per_day
    result: dict[str, Any] = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    result.update(block("total", ""))
    result["summary"] = plain_verdict(
        median_hours=result["mql_decision"]["median_hours"],
        sla_hours=decision_clock.hours, hours_per_day=hours_per_day,
    )
    result["by_owner"] = [{"owner": k or None, **block("owner", k)} for k in keys("owner")]
    result["by_week"] = [{"week": k, **block("week", k)} for k in keys("week")]
    if group:
        result["groups"] = [{"key": k, **block("group", k)} for k in keys("group")]
    return result


def velocity_spans(filters: ReportFilters, start: dt.datetime, end: dt.datetime) -> dict[str, _Span]:
    """What velocity measures, for starts in [start, end): MQL→decision ("decision"), SAL→first
    touch ("touch") and MQL→won ("won")."""
    base = entries().filter(filters.lead_q("lead__"), at__gte=start, at__lt=end)
    # A decision comes at or after its MQL entry, so after the range's start: the MQL entries of
    # the range and the decisions from its start on, in one scan.
    became_mql = Q(to_stage=Stage.MQL, at__lt=end)
    mqls_and_decisions = entries().filter(filters.lead_q("lead__"), at__gte=start).filter(
        became_mql | Q(from_stage=Stage.MQL)
    )
    return {
        "decision": _Span(rows=mqls_and_decisions, starts=became_mql, pick="MIN", first=start, last=end),
        "touch": _Span(rows=base.filter(to_stage=Stage.SAL), pick="MIN", first=start, last=end,
                       ends=Touch.objects.all()),
        # MQL→won: from the last MQL entry before the win (the cycle that won), elapsed days. That
        # entry can be from long before the range: the won leads' MQL entries are the candidates.
        "won": _Span(rows=base.filter(to_stage=Stage.WON), pick="MAX", first=start, last=end,
                     ends=entries().filter(to_stage=Stage.MQL)),
    }


# --- Rejections ---------------------------------------------------------------------------


def rejections(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Rejections, recycles, disqualifications and losses by reason and by the stage left;
    leads recycled more than once (twice or more by the range's end, once within it)."""
    group = _group_field(group_by)
    plan = rollup.plan(filters, [group] if group else [])
    if plan is not None:
        return _rejections_from_rollup(plan, date_from=date_from, date_to=date_to, filters=filters,
                                       group_by=group_by, group=group)
    start, end = _bounds(date_from, date_to)
    exits = entries().filter(
        filters.lead_q("lead__"), to_stage__in=REJECTION_STAGES, at__gte=start, at__lt=end
    )
    # From the recycle entries up, not from every lead: leads with two or more by the range's
    # end, at least one of them inside it.
    recycles = entries().filter(filters.lead_q("lead__"), to_stage=Stage.RECYCLED, at__lt=end)
    in_range = Q(at__gte=start)

    def repeat(*fields: str) -> QuerySet:
        return (
            recycles.annotate(**{f"k{i}": F(f"lead__{f}") for i, f in enumerate(fields)})
            .values("lead_id", *(f"k{i}" for i in range(len(fields))))
            .annotate(recycles=Count("pk"), recycles_in_range=Count("pk", filter=in_range))
            .filter(recycles__gt=1, recycles_in_range__gt=0).order_by()
        )

    def shape(rows) -> list[dict]:
        return [
            {"reason": row["reason"], "stage": row["from_stage"], "to_stage": row["to_stage"], "count": row["count"]}
            for row in rows
        ]

    counted = exits.values("reason", "from_stage", "to_stage").annotate(count=Count("pk"))
    result: dict[str, Any] = {
        "filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by),
        "by_reason": shape(counted.order_by("-count", "reason", "from_stage", "to_stage")),
        "recycled_more_than_once": repeat().count(),
    }
    if group:
        rows = (
            exits.values(f"lead__{group}", "reason", "from_stage", "to_stage")
            .annotate(count=Count("pk"))
            .order_by(f"lead__{group}", "-count", "reason", "from_stage", "to_stage")
        )
        repeat_sql, repeat_params = repeat(group).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT r.k0, COUNT(*) FROM ({repeat_sql}) r GROUP BY r.k0", repeat_params)
            repeats = dict(cursor.fetchall())
        groups: dict[str, dict] = {}
        for row in rows:
            key = _key(row[f"lead__{group}"])
            groups.setdefault(key, {"key": key, "by_reason": [], "recycled_more_than_once": 0})
            groups[key]["by_reason"].extend(shape([row]))
        for value, n in repeats.items():
            key = _key(value)
            groups.setdefault(key, {"key": key, "by_reason": [], "recycled_more_than_once": 0})
            groups[key]["recycled_more_than_once"] = n
        result["groups"] = [groups[k] for k in sorted(groups)]
    return result


def _rejections_from_rollup(plan, *, date_from, date_to, filters, group_by, group) -> dict:
    """The rejections report from the rollup: the same rows in the same order as live."""

    def shape(row: tuple) -> dict:
        return {"reason": row[1], "stage": row[2], "to_stage": row[3], "count": int(row[4])}

    result: dict[str, Any] = {
        "filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by),
        "by_reason": [shape(row) for row in rollup.exits(plan, None, date_from, date_to)],
        "recycled_more_than_once": rollup.repeat_recycles(plan, None, date_from, date_to)[None],
    }
    if group:
        groups: dict[str, dict] = {}

        def slot(value) -> dict:
            key = _key(value)
            return groups.setdefault(key, {"key": key, "by_reason": [], "recycled_more_than_once": 0})

        for row in rollup.exits(plan, group, date_from, date_to):
            slot(row[0])["by_reason"].append(shape(row))
        for value, n in rollup.repeat_recycles(plan, group, date_from, date_to).items():
            slot(value)["recycled_more_than_once"] = n
        result["groups"] = [groups[k] for k in sorted(groups)]
    return result


# --- Marketing commitment -----------------------------------------------------------------


def _weeks(date_from: dt.date, date_to: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first, last) day of each Monday-based week overlapping the range, clipped to it."""
    monday = date_from - dt.timedelta(days=date_from.weekday())
    weeks = []
    while monday <= date_to:
        weeks.append((max(monday, date_from), min(monday + dt.timedelta(days=6), date_to)))
        monday += dt.timedelta(days=7)
    return weeks


def _quarter_of(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def commitment(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Qualified leads (MQL entries) delivered per week against the quarter's target, prorated
    by day: a week holding 7 of the quarter's 91 days owes 7/91 of its target.

    With a team filter the team's targets count; without, every target (teams and overall)."""
    group = _group_field(group_by)
    start, end = _bounds(date_from, date_to)
    mqls = entries().filter(filters.lead_q("lead__"), to_stage=Stage.MQL, at__gte=start, at__lt=end)
    plan = rollup.plan(filters, [group] if group else [])
    delivered: dict[str, int] = {}
    if plan is not None:
        for day, n in rollup.mql_entries_by_day(plan, date_from, date_to).items():
            monday = (day - dt.timedelta(days=day.weekday())).isoformat()
            delivered[monday] = delivered.get(monday, 0) + n
    else:
        weekly = mqls.annotate(week=TruncWeek("at")).values("week").annotate(n=Count("pk")).order_by()
        delivered = {str(row["week"])[:10]: row["n"] for row in weekly}

    quarters = {_quarter_of(date_from), _quarter_of(date_to)}
    year, quarter = _quarter_of(date_from)
    while (year, quarter) < _quarter_of(date_to):
        year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)
        quarters.add((year, quarter))
    targets = QuarterlyTarget.objects.filter(
        Q(*[Q(year=y, quarter=q) for y, q in quarters], _connector=Q.OR)
    )
    if filters.team is not None:
        targets = targets.filter(team_id=filters.team)
    promised: dict[tuple[int, int], int] = {}
    for target in targets:
        promised[(target.year, target.quarter)] = (
            promised.get((target.year, target.quarter), 0) + target.qualified_leads
        )

    def prorated(first: dt.date, last: dt.date) -> float:
        total = 0.0
        day = first
        while day <= last:
            key = _quarter_of(day)
            if key in promised:
                q_start = dt.date(key[0], 3 * (key[1] - 1) + 1, 1)
                q_end = (dt.date(key[0] + 1, 1, 1) if key[1] == 4
                         else dt.date(key[0], 3 * key[1] + 1, 1))
                total += promised[key] / (q_end - q_start).days
            day += dt.timedelta(days=1)
        return total

    weeks = []
    cumulative_target = 0.0
    cumulative_delivered = 0
    for first, last in _weeks(date_from, date_to):
        monday = (first - dt.timedelta(days=first.weekday())).isoformat()
        target = prorated(first, last)
        count = delivered.get(monday, 0)
        cumulative_target += target
        cumulative_delivered += count
        weeks.append(
            {"week": monday, "delivered": count, "target": round(target, 2),
             "cumulative_delivered": cumulative_delivered,
             "cumulative_target": round(cumulative_target, 2)}
        )
    result: dict[str, Any] = {
        "filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by),
        "promised": round(cumulative_target, 2),
        "delivered": cumulative_delivered,
        "delivery_rate": _rate(cumulative_delivered, round(cumulative_target, 2)) if cumulative_target else None,
        "weeks": weeks,
    }
    if group:
        if plan is not None:
            by_group = rollup.mql_entries_by_group(plan, group, date_from, date_to)
        else:
            rows = mqls.values(f"lead__{group}").annotate(n=Count("pk")).order_by()
            by_group = {row[f"lead__{group}"]: row["n"] for row in rows}
        counted = {_key(value): n for value, n in by_group.items()}
        result["groups"] = [{"key": key, "delivered": counted[key]} for key in sorted(counted)]
    return result


# --- Weekly summary -----------------------------------------------------------------------


def breaches_between(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters) -> dict[str, Any]:
    """SLA breaches detected in the range, by clock."""
    start, end = _bounds(date_from, date_to)
    qs = SlaBreach.objects.filter(filters.lead_q("lead__"), detected_at__gte=start, detected_at__lt=end)
    by_clock = {row["clock"]: row["n"] for row in qs.values("clock").annotate(n=Count("pk")).order_by()}
    return {"total": sum(by_clock.values()), "by_clock": by_clock}


rejections = tuned(rejections)
commitment = tuned(commitment)
# funnel, efficiency, sources and velocity run their queries through all_at_once.

REPORTS = {
    "funnel": funnel,
    "efficiency": efficiency,
    "velocity": velocity,
    "rejections": rejections,
    "commitment": commitment,
    "sources": sources,
}
