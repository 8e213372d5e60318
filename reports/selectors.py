"""The reports of SPEC section 5, aggregated in the database: funnel, efficiency, sources,
velocity, rejections and commitment (`REPORTS`), and the breaches of the weekly summary.

Each report function takes `(*, date_from, date_to, filters, group_by=None)` and returns the
JSON-ready dict of SPEC section 9; the API, the CSV export, the dashboard and the weekly email
all call these, so every surface shows the same numbers. No function iterates over leads in
Python: row sets are built with the ORM and aggregated by SQL (conditional counts, window
functions for percentiles). A count report reads the read model (`reports.rollup`, kept by
`reports.readmodel`) when it can answer, the stage history otherwise; velocity is live.

The pieces below these, lowest first: `sql` (dialect-neutral SQL), `filters` (the question every
report is asked: `ReportFilters`, re-exported here with `default_range` and `GROUP_FIELDS` for
the callers), `stages` (what a stage entry is), `parallel` (how a report's queries run),
`business_hours` and `spans` (velocity's spans measured in SQL), and `rollup` (the read model).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leads.models import Lead, Stage
from sla.models import SlaBreach

from . import rollup
from .filters import GROUP_FIELDS, ReportFilters, bounds, default_range, group_field, group_key
from .models import QuarterlyTarget
from .open_clocks import open_clocks, with_open
from .parallel import all_at_once, cheap, tuned
from .spans import distribution, velocity_clocks, velocity_spans
from .sql import read_connection
from .stages import CHAIN, EXITS, REJECTION_STAGES, entries, rank, reached_q

__all__ = [
    "GROUP_FIELDS",
    "REPORTS",
    "ReportFilters",
    "breaches_between",
    "commitment",
    "default_range",
    "efficiency",
    "freshness",
    "funnel",
    "plain_verdict",
    "rejections",
    "sources",
    "velocity",
]


def freshness(report: str | None = None) -> dict[str, Any]:
    """As of when the reports' numbers are: the read model's `as_of` (every write committed
    before it is counted) and how many seconds behind now that is, whether it lags more than
    `REPORTS_MAX_LAG_SECONDS`; for velocity, or with the read model off or never caught up,
    the live history: now."""
    now = timezone.now()
    state = None if report == "velocity" else rollup.current_state()
    as_of = state.as_of if state is not None and state.as_of is not None else now
    lag = max(0.0, (now - as_of).total_seconds())
    return {
        "as_of": as_of,
        "lag_seconds": round(lag, 1),
        "lagging": lag > getattr(settings, "REPORTS_MAX_LAG_SECONDS", 60),
        "read_model": state is not None,
    }


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


# --- Funnel -------------------------------------------------------------------------------


def _funnel_counts(qs: QuerySet, start: dt.datetime, end: dt.datetime, group: str | None) -> list[dict]:
    # The range is the WHERE clause alone: repeating it in every FILTER cost a third of the time.
    aggregates: dict[str, Any] = {}
    for stage in CHAIN[1:]:
        # Entering a chain stage: reaching it or a later one from before it (a skip passes it).
        earlier = [s for s in CHAIN if rank(s) < rank(stage)] + list(EXITS)
        q = reached_q(stage) & Q(from_stage__in=earlier)
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
        return {group_key(row[group]): row["n"] for row in qs.values(group).annotate(n=Count("pk")).order_by()}
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
    group = group_field(group_by)
    start, end = bounds(date_from, date_to)
    result: dict[str, Any] = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    empty = dict.fromkeys((*CHAIN, *EXITS), 0)
    plan = rollup.plan(filters, [group] if group else [])
    if plan is not None:
        result.update(_funnel_shape({**empty, **rollup.funnel_counts(plan, None, date_from, date_to).get(None, {})}))
        if group:
            rows = {group_key(k): row for k, row in rollup.funnel_counts(plan, group, date_from, date_to).items()}
            result["groups"] = [{"key": key, **_funnel_shape({**empty, **rows[key]})} for key in sorted(rows)]
        return result
    qs = entries().filter(filters.lead_q("lead__"))
    queries: list[functools.partial[Any]] = [
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
        rows = {group_key(row[f"lead__{group}"]): row for row in entered_by_group}
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
    reached_sal = [s for s in CHAIN if rank(s) >= rank(Stage.SAL)]
    reached_sql = [s for s in CHAIN if rank(s) >= rank(Stage.SQL)]
    per_lead = (
        entries()
        .filter(filters.lead_q("lead__"), at__gte=start, to_stage__in=CHAIN[1:])
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
    with read_connection().cursor() as cursor:
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

    @cheap
    def from_rollup(filters, start, end, keys):
        return rollup.cohort_counts(plan, keys, date_from, date_to)

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
    group = group_field(group_by)
    start, end = bounds(date_from, date_to)
    result: dict[str, Any] = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    counts = _cohort_counter(filters, [group] if group else [], date_from, date_to)
    total, *grouped = all_at_once(
        functools.partial(counts, filters, start, end, []),
        *([functools.partial(counts, filters, start, end, [group])] if group else []),
    )
    result.update(_efficiency_shape(total[0]))
    if grouped:
        rows = sorted(grouped[0], key=lambda r: group_key(r[group]))
        result["groups"] = [{"key": group_key(row[group]), **_efficiency_shape(row)} for row in rows]
    return result


def _source_rows(rows: list[dict]) -> list[dict]:
    ordered = sorted(rows, key=lambda r: (-r["mql"], r["source"]))
    return [
        {
            "source": row["source"],
            "mql": row["mql"],
            "sql": row["sql"],
            "mql_to_sql_rate": _rate(row["sql"], row["mql"]),
        }
        for row in ordered
    ]


def sources(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """MQL volume and MQL→SQL efficiency by source (most MQLs first)."""
    group = group_field(group_by)
    start, end = bounds(date_from, date_to)
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
            split.setdefault(group_key(row[group]), []).append(row)
        result["groups"] = [{"key": key, "sources": _source_rows(split[key])} for key in sorted(split)]
    return result


# --- Velocity (spans measured in `spans`, live) -------------------------------------------


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
    """ "median 3.1 days against a 2-day SLA" when the median is over the SLA, in working days."""
    if median_hours is None or sla_hours is None:
        return ""
    median_days = median_hours / hours_per_day
    sla_days = sla_hours / hours_per_day
    if sla_hours >= hours_per_day:
        sla_text = ngettext("%(count)s-day", "%(count)s-day", round(sla_days)) % {"count": _number(sla_days, "g")}
    else:
        sla_text = ngettext("%(count)s-hour", "%(count)s-hour", round(sla_hours)) % {"count": _number(sla_hours, "g")}
    if median_hours > sla_hours:
        if median_hours >= hours_per_day:
            return _("median %(amount)s against a %(sla)s SLA") % {
                "amount": ngettext("%(count)s day", "%(count)s days", round(median_days))
                % {"count": _number(median_days, ".1f")},
                "sla": sla_text,
            }
        return _("median %(amount)s against a %(sla)s SLA") % {
            "amount": ngettext("%(count)s hour", "%(count)s hours", round(median_hours))
            % {"count": _number(median_hours, ".1f")},
            "sla": sla_text,
        }
    return _("median within the %(sla)s SLA") % {"sla": sla_text}


def _number(value: float, spec: str) -> str:
    """`value` written with `spec` ("g", ".1f") and the active language's decimal separator."""
    text = format(value, spec)
    return text.replace(".", formats.get_format("DECIMAL_SEPARATOR")) if "." in text else text


def velocity(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Time from MQL to accept/reject and from SAL to first touch (business hours, against the
    SLA), and MQL→won in days; overall, by owner, by week of the stage entry, and by group."""
    group = group_field(group_by)
    start, end = bounds(date_from, date_to)
    # Live: percentiles need the spans themselves, and stay exact (the read model holds counts).
    clocks = velocity_clocks()
    decision_clock, touch_clock = clocks["decision"], clocks["touch"]
    assert decision_clock is not None and touch_clock is not None  # velocity_clocks: only "won" has none
    sla_hours = {"decision": decision_clock.hours, "touch": touch_clock.hours, "won": None}
    queries = [
        functools.partial(distribution, span, clock=clocks[name], sla_hours=sla_hours[name], group=group)
        for name, span in velocity_spans(filters, start, end).items()
    ]
    results = all_at_once(*queries)
    decisions, touches, wins = results
    # Clocks still open count too: past due as misses, running apart (never as met).
    open_decisions = open_clocks(measure="decision", filters=filters, start=start, end=end)
    open_touches = open_clocks(measure="touch", filters=filters, start=start, end=end)

    def block(kind: str, key: str) -> dict[str, Any]:
        slice_ = (kind, key)
        return {
            "mql_decision": with_open(
                _stats(decisions.get(slice_), unit="hours", sla_hours=decision_clock.hours),
                decisions.get(slice_),
                open_decisions,
                slice_,
            ),
            "sal_first_touch": with_open(
                _stats(touches.get(slice_), unit="hours", sla_hours=touch_clock.hours),
                touches.get(slice_),
                open_touches,
                slice_,
            ),
            "mql_to_won": _stats(wins.get(slice_), unit="days", sla_hours=None),
        }

    def keys(kind: str) -> list[str]:
        sources = (decisions, touches, wins, open_decisions, open_touches)
        return sorted({k for source in sources for (kd, k) in source if kd == kind})

    hours_per_day = decision_clock.hours_per_day
    result: dict[str, Any] = {"filters": filters.echo(date_from=date_from, date_to=date_to, group_by=group_by)}
    result.update(block("total", ""))
    result["summary"] = plain_verdict(
        median_hours=result["mql_decision"]["median_hours"],
        sla_hours=decision_clock.hours,
        hours_per_day=hours_per_day,
    )
    result["by_owner"] = [{"owner": k or None, **block("owner", k)} for k in keys("owner")]
    result["by_week"] = [{"week": k, **block("week", k)} for k in keys("week")]
    if group:
        result["groups"] = [{"key": k, **block("group", k)} for k in keys("group")]
    return result


# --- Rejections ---------------------------------------------------------------------------


def rejections(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters, group_by: str | None = None) -> dict:
    """Rejections, recycles, disqualifications and losses by reason and by the stage left;
    leads recycled more than once (twice or more by the range's end, once within it)."""
    group = group_field(group_by)
    plan = rollup.plan(filters, [group] if group else [])
    if plan is not None:
        return _rejections_from_rollup(
            plan, date_from=date_from, date_to=date_to, filters=filters, group_by=group_by, group=group
        )
    start, end = bounds(date_from, date_to)
    exits = entries().filter(filters.lead_q("lead__"), to_stage__in=REJECTION_STAGES, at__gte=start, at__lt=end)
    # From the recycle entries up, not from every lead: leads with two or more by the range's
    # end, at least one of them inside it.
    recycles = entries().filter(filters.lead_q("lead__"), to_stage=Stage.RECYCLED, at__lt=end)
    in_range = Q(at__gte=start)

    def repeat(*fields: str) -> QuerySet:
        return (
            recycles.annotate(**{f"k{i}": F(f"lead__{f}") for i, f in enumerate(fields)})
            .values("lead_id", *(f"k{i}" for i in range(len(fields))))
            .annotate(recycles=Count("pk"), recycles_in_range=Count("pk", filter=in_range))
            .filter(recycles__gt=1, recycles_in_range__gt=0)
            .order_by()
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
        with read_connection().cursor() as cursor:
            cursor.execute(f"SELECT r.k0, COUNT(*) FROM ({repeat_sql}) r GROUP BY r.k0", repeat_params)
            repeats = dict(cursor.fetchall())
        groups: dict[str, dict] = {}
        for row in rows:
            key = group_key(row[f"lead__{group}"])
            groups.setdefault(key, {"key": key, "by_reason": [], "recycled_more_than_once": 0})
            groups[key]["by_reason"].extend(shape([row]))
        for value, n in repeats.items():
            key = group_key(value)
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
            key = group_key(value)
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
    group = group_field(group_by)
    start, end = bounds(date_from, date_to)
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
    targets = QuarterlyTarget.objects.filter(Q(*[Q(year=y, quarter=q) for y, q in quarters], _connector=Q.OR))
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
                q_end = dt.date(key[0] + 1, 1, 1) if key[1] == 4 else dt.date(key[0], 3 * key[1] + 1, 1)
                total += promised[key] / (q_end - q_start).days
            day += dt.timedelta(days=1)
        return total

    weeks = []
    cumulative_target = 0.0
    cumulative_delivered = 0
    for first, last in _weeks(date_from, date_to):
        monday = (first - dt.timedelta(days=first.weekday())).isoformat()
        owed = prorated(first, last)
        count = delivered.get(monday, 0)
        cumulative_target += owed
        cumulative_delivered += count
        weeks.append(
            {
                "week": monday,
                "delivered": count,
                "target": round(owed, 2),
                "cumulative_delivered": cumulative_delivered,
                "cumulative_target": round(cumulative_target, 2),
            }
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
        counted = {group_key(value): n for value, n in by_group.items()}
        result["groups"] = [{"key": key, "delivered": counted[key]} for key in sorted(counted)]
    return result


# --- Weekly summary -----------------------------------------------------------------------


def breaches_between(*, date_from: dt.date, date_to: dt.date, filters: ReportFilters) -> dict[str, Any]:
    """SLA breaches detected in the range, by clock."""
    start, end = bounds(date_from, date_to)
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
