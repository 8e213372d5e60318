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
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Func, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncWeek
from django.utils import timezone

from leads.models import Lead, SlaClock, Stage, StageTransition, Touch
from sla.calendar import Calendar
from sla.models import BusinessCalendar, SlaBreach, SlaPolicy

from .models import BusinessDay, QuarterlyTarget

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
# The business-day table covers these years; velocities outside it would not be meaningful.
CALENDAR_FIRST_DAY = dt.date(2000, 1, 1)
CALENDAR_LAST_DAY = dt.date(2045, 12, 31)


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


class Epoch(Func):
    """Seconds since the Unix epoch of a datetime, as a float, on SQLite and PostgreSQL."""

    output_field = FloatField()

    # julianday() is a float of days; rounding to the millisecond gives back the exact seconds,
    # so "exactly at the SLA" compares equal on SQLite as it does on PostgreSQL.
    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="ROUND((julianday(%(expressions)s) - 2440587.5) * 86400.0, 3)", **extra
        )

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)", **extra
        )


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
    in_range = Q(at__gte=start, at__lt=end)
    aggregates: dict[str, Any] = {}
    for stage in CHAIN[1:]:
        # Entering a chain stage: reaching it or a later one from before it (a skip passes it).
        earlier = [s for s in CHAIN if _rank(s) < _rank(stage)] + list(EXITS)
        q = in_range & _reached_q(stage) & Q(from_stage__in=earlier)
        aggregates[stage] = Count("lead_id", distinct=True, filter=q)
    for stage in EXITS:
        aggregates[stage] = Count("lead_id", distinct=True, filter=in_range & Q(to_stage=stage))
    rows = qs.filter(in_range)
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
    qs = entries().filter(filters.lead_q("lead__"))
    result = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    total = _funnel_counts(qs, start, end, None)[0]
    total[Stage.LEAD] = _created_counts(filters, start, end, None)[""]
    result.update(_funnel_shape(total))
    if group:
        created = _created_counts(filters, start, end, group)
        rows = {_key(row[f"lead__{group}"]): row for row in _funnel_counts(qs, start, end, group)}
        empty = {stage: 0 for stage in (*CHAIN, *EXITS)}
        result["groups"] = [
            {"key": key, **_funnel_shape({**empty, **rows.get(key, {}), Stage.LEAD: created.get(key, 0)})}
            for key in sorted(set(rows) | set(created))
        ]
    return result


# --- Efficiency and sources ----------------------------------------------------------------


def _cohort_counts(filters: ReportFilters, start: dt.datetime, end: dt.datetime, keys: list[str]) -> list[dict]:
    """The cohort that became MQL in the range, counted by `keys` (lead fields): how many, and
    how many reached SAL and SQL at or after their first MQL entry in the range.

    Starts from the range's MQL entries (index on to_stage, at) rather than from every lead, and
    probes each cohort lead's later history once per question (index on lead, at).
    """
    aliases = {f"k{i}": F(f"lead__{key}") for i, key in enumerate(keys)}
    inner = (
        entries().filter(filters.lead_q("lead__"), to_stage=Stage.MQL, at__gte=start, at__lt=end)
        .annotate(**aliases).values("lead_id", *aliases).annotate(mql_at=Min("at")).order_by()
    )
    inner_sql, params = inner.query.sql_with_params()
    table = StageTransition._meta.db_table

    def reached(stage: str) -> str:
        stages = ", ".join(f"'{s}'" for s in CHAIN if _rank(s) >= _rank(stage))
        return (
            f"SUM(CASE WHEN EXISTS (SELECT 1 FROM {table} t WHERE t.lead_id = c.lead_id"
            f" AND t.at >= c.mql_at AND t.from_stage <> t.to_stage AND t.to_stage IN ({stages}))"
            " THEN 1 ELSE 0 END)"
        )

    columns = "".join(f"c.{alias}, " for alias in aliases)
    group_by = f" GROUP BY {', '.join('c.' + alias for alias in aliases)}" if aliases else ""
    sql = (
        f"SELECT {columns}COUNT(*), {reached(Stage.SAL)}, {reached(Stage.SQL)}"
        f" FROM ({inner_sql}) c{group_by}"
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
    result.update(_efficiency_shape(_cohort_counts(filters, start, end, [])[0]))
    if group:
        rows = sorted(_cohort_counts(filters, start, end, [group]), key=lambda r: _key(r[group]))
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
    result: dict[str, Any] = {
        "filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by),
        "sources": _source_rows(_cohort_counts(filters, start, end, ["source"])),
    }
    if group:
        split: dict[str, list] = {}
        for row in _cohort_counts(filters, start, end, [group, "source"]):
            split.setdefault(_key(row[group]), []).append(row)
        result["groups"] = [{"key": key, "sources": _source_rows(split[key])} for key in sorted(split)]
    return result


# --- Business hours in SQL ----------------------------------------------------------------


def _calendar_signature(calendar: Calendar) -> str:
    payload = json.dumps(
        [calendar.tz, sorted(calendar.working_days), calendar.start.isoformat(),
         calendar.end.isoformat(), sorted(d.isoformat() for d in calendar.holidays)]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_business_days(business_calendar: BusinessCalendar) -> None:
    """Make the `BusinessDay` rows of a calendar match its definition (idempotent).

    One cheap query when they already match; a rebuild of ~12,000 rows after the calendar
    changed. Two workers rebuilding at once both write the same rows: the unique constraint and
    the transaction make the second one's insert a no-op.
    """
    calendar = business_calendar.as_calendar()
    signature = _calendar_signature(calendar)
    current = BusinessDay.objects.filter(calendar=business_calendar)
    if current.filter(signature=signature).exists() and not current.exclude(signature=signature).exists():
        return
    rows = []
    seconds = 0.0
    day = CALENDAR_FIRST_DAY
    while day <= CALENDAR_LAST_DAY:
        interval = calendar.interval(day)
        if interval is not None:
            begin, finish = interval[0].timestamp(), interval[1].timestamp()
            rows.append(
                BusinessDay(calendar=business_calendar, signature=signature, day=day,
                            start_epoch=begin, end_epoch=finish, seconds_before=seconds)
            )
            seconds += finish - begin
        day += dt.timedelta(days=1)
    with transaction.atomic():
        BusinessDay.objects.filter(calendar=business_calendar).exclude(signature=signature).delete()
        BusinessDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)


def _least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if connection.vendor == "postgresql" else f"MIN({a}, {b})"


def _worked_before(epoch_sql: str, calendar_id: int) -> str:
    """SQL for the calendar's working seconds before the moment `epoch_sql` (seconds)."""
    return (
        "COALESCE((SELECT bd.seconds_before + "
        + _least(f"{epoch_sql} - bd.start_epoch", "bd.end_epoch - bd.start_epoch")
        + f" FROM {BusinessDay._meta.db_table} bd WHERE bd.calendar_id = {int(calendar_id)}"
        f" AND bd.start_epoch <= {epoch_sql} ORDER BY bd.start_epoch DESC LIMIT 1), 0)"
    )


@dataclass(frozen=True)
class _Clock:
    hours: float | None
    calendar_id: int | None  # None: plain elapsed hours


def _clock(kind: str) -> _Clock:
    policy = (
        SlaPolicy.objects.select_related("calendar").filter(clock=kind, active=True).first()
    )
    if policy is None:
        return _Clock(hours=None, calendar_id=None)
    if not policy.business_time:
        return _Clock(hours=policy.duration_hours, calendar_id=None)
    ensure_business_days(policy.calendar)
    return _Clock(hours=policy.duration_hours, calendar_id=policy.calendar_id)


# --- Percentiles --------------------------------------------------------------------------


def _percentile_sql(p: float) -> str:
    """percentile_cont(p) over `x` in each (kind, k) partition of the `ranked` CTE.

    PostgreSQL has it built in; on SQLite the same linear interpolation comes from the row
    numbers: position 1 + p·(n−1), between the row at its floor and the next one.
    """
    if connection.vendor == "postgresql":
        return f"percentile_cont({p}) WITHIN GROUP (ORDER BY x)"
    pos = f"(1 + {p} * (n - 1))"
    lo = f"CAST({pos} AS INTEGER)"
    return (
        f"(MAX(CASE WHEN rn = {lo} THEN x END) + ({pos} - {lo}) * "
        f"(COALESCE(MAX(CASE WHEN rn = {lo} + 1 THEN x END), MAX(CASE WHEN rn = {lo} THEN x END))"
        f" - MAX(CASE WHEN rn = {lo} THEN x END)))"
    )


def _distribution(rows: QuerySet, *, value_sql: str, sla_hours: float | None, group: str | None) -> dict:
    """Count, median, p90 and share within SLA of `value_sql` over `rows`, in one query.

    `rows` has columns t0, t1 (epoch seconds), owner_key, week_key and group_key; the result is
    keyed by ("total", ""), ("owner", name), ("week", monday) and ("group", key).
    """
    columns = ["t0", "t1", "owner_key", "week_key"] + (["group_key"] if group else [])
    inner_sql, params = rows.values_list(*columns).query.sql_with_params()
    slices = ["SELECT 'total' AS kind, '' AS k, x FROM h",
              "SELECT 'owner', owner_key, x FROM h",
              "SELECT 'week', week_key, x FROM h"]
    if group:
        slices.append("SELECT 'group', group_key, x FROM h")
    pg = connection.vendor == "postgresql"
    text = "text" if pg else "TEXT"
    group_col = f", CAST(group_key AS {text}) AS group_key" if group else ""
    within = (
        f"AVG(CASE WHEN x <= {float(sla_hours)} THEN 1.0 ELSE 0.0 END)" if sla_hours is not None else "NULL"
    )
    ranked = "" if pg else (
        ", ROW_NUMBER() OVER (PARTITION BY kind, k ORDER BY x) AS rn,"
        " COUNT(*) OVER (PARTITION BY kind, k) AS n"
    )
    # Materialised so each row's end moment (a correlated look-up) is computed once, not once
    # per reference; rows whose clock has not stopped yet (no decision, no touch) drop out here.
    materialized = "MATERIALIZED" if pg else ""
    sql = f"""
        WITH r AS {materialized} ({inner_sql}),
        h AS (
            SELECT {value_sql} AS x, COALESCE(CAST(owner_key AS {text}), '') AS owner_key,
                   CAST(week_key AS {text}) AS week_key{group_col}
            FROM (SELECT t0, t1, owner_key, week_key{', group_key' if group else ''} FROM r) v
            WHERE t1 IS NOT NULL
        ),
        s AS ({' UNION ALL '.join(slices)}),
        ranked AS (SELECT kind, k, x{ranked} FROM s)
        SELECT kind, k, COUNT(*), {_percentile_sql(0.5)}, {_percentile_sql(0.9)}, {within}
        FROM ranked GROUP BY kind, k ORDER BY kind, k
    """
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


def _hours_sql(clock: _Clock) -> str:
    if clock.calendar_id is None:
        return "(t1 - t0) / 3600.0"
    return f"(({_worked_before('t1', clock.calendar_id)}) - ({_worked_before('t0', clock.calendar_id)})) / 3600.0"


def _rows(qs: QuerySet, *, end_moment, group: str | None) -> QuerySet:
    rows = qs.annotate(
        t0=Epoch("at"),
        t1=Epoch(end_moment),
        # The rep holding the lead after that stage entry (recorded on the transition): no join
        # to the leads table, which would mean hashing every lead on a big database.
        owner_key=F("owner__username"),
        week_key=TruncWeek("at"),
    )
    if group:
        rows = rows.annotate(group_key=F(f"lead__{group}"))
    return rows.order_by()


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
    base = entries().filter(filters.lead_q("lead__"), at__gte=start, at__lt=end)

    decision_clock = _clock(SlaClock.MQL_DECISION)
    decided_at = Subquery(
        entries().filter(lead=OuterRef("lead"), from_stage=Stage.MQL, at__gte=OuterRef("at"))
        .order_by("at").values("at")[:1]
    )
    decisions = _distribution(
        _rows(base.filter(to_stage=Stage.MQL), end_moment=decided_at, group=group),
        value_sql=_hours_sql(decision_clock), sla_hours=decision_clock.hours, group=group,
    )

    touch_clock = _clock(SlaClock.SAL_FIRST_TOUCH)
    first_touch = Subquery(
        Touch.objects.filter(lead=OuterRef("lead"), at__gte=OuterRef("at")).order_by("at").values("at")[:1]
    )
    touches = _distribution(
        _rows(base.filter(to_stage=Stage.SAL), end_moment=first_touch, group=group),
        value_sql=_hours_sql(touch_clock), sla_hours=touch_clock.hours, group=group,
    )

    # MQL→won: from the last MQL entry before the win (the cycle that won), elapsed days.
    became_mql = Subquery(
        entries().filter(lead=OuterRef("lead"), to_stage=Stage.MQL, at__lte=OuterRef("at"))
        .order_by("-at").values("at")[:1]
    )
    wins = _distribution(
        # Reversed on purpose: t0 is the win, t1 the MQL entry it came from.
        _rows(base.filter(to_stage=Stage.WON), end_moment=became_mql, group=group),
        value_sql="(t0 - t1) / 86400.0", sla_hours=None, group=group,
    )

    def block(kind: str, key: str) -> dict[str, Any]:
        return {
            "mql_decision": _stats(decisions.get((kind, key)), unit="hours", sla_hours=decision_clock.hours),
            "sal_first_touch": _stats(touches.get((kind, key)), unit="hours", sla_hours=touch_clock.hours),
            "mql_to_won": _stats(wins.get((kind, key)), unit="days", sla_hours=None),
        }

    def keys(kind: str) -> list[str]:
        return sorted({k for source in (decisions, touches, wins) for (kd, k) in source if kd == kind})

    hours_per_day = _hours_per_day(decision_clock)
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


def _hours_per_day(clock: _Clock) -> float:
    if clock.calendar_id is None:
        return 24.0
    return BusinessCalendar.objects.get(pk=clock.calendar_id).as_calendar().hours_per_day


# --- Rejections ---------------------------------------------------------------------------


def rejections(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Rejections, recycles, disqualifications and losses by reason and by the stage left;
    leads recycled more than once (twice or more by the range's end, once within it)."""
    group = _group_field(group_by)
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
            .annotate(count=Count("pk")).order_by(f"lead__{group}", "-count", "reason", "from_stage")
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
        rows = mqls.values(f"lead__{group}").annotate(n=Count("pk")).order_by(f"lead__{group}")
        result["groups"] = [{"key": _key(row[f"lead__{group}"]), "delivered": row["n"]} for row in rows]
    return result


# --- Weekly summary -----------------------------------------------------------------------


def breaches_between(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters) -> dict[str, Any]:
    """SLA breaches detected in the range, by clock."""
    start, end = _bounds(date_from, date_to)
    qs = SlaBreach.objects.filter(filters.lead_q("lead__"), detected_at__gte=start, detected_at__lt=end)
    by_clock = {row["clock"]: row["n"] for row in qs.values("clock").annotate(n=Count("pk")).order_by()}
    return {"total": sum(by_clock.values()), "by_clock": by_clock}


def _without_jit(report):
    """PostgreSQL's JIT compiles these plans (their correlated look-ups look costly to the
    planner) for 100–300 ms, more than the queries then take; each report turns it off for its
    own transaction."""

    @functools.wraps(report)
    def run(**kwargs: Any) -> dict:
        if connection.vendor != "postgresql":
            return report(**kwargs)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
            return report(**kwargs)

    return run


funnel = _without_jit(funnel)
efficiency = _without_jit(efficiency)
sources = _without_jit(sources)
velocity = _without_jit(velocity)
rejections = _without_jit(rejections)
commitment = _without_jit(commitment)

REPORTS = {
    "funnel": funnel,
    "efficiency": efficiency,
    "velocity": velocity,
    "rejections": rejections,
    "commitment": commitment,
    "sources": sources,
}
