"""The report rollup: the count reports (funnel, efficiency, sources, rejections, commitment)
added up per day, so a year is a few thousand small rows instead of millions of stage entries,
and velocity's spans already found and measured, with the counts per length bin that let its
percentiles sort only a bin's spans (`rollup_spans`).

`build()` recomputes it from the stage history in one transaction (a beat task every few
minutes, `manage.py build_report_rollup` by hand); the reports in `selectors` read it while it
is younger than `settings.REPORTS_ROLLUP_MAX_AGE` seconds and answer live otherwise. Built and
read, its numbers are those of the live queries on the same data (tests/reports/test_rollup.py
checks every report, filter and grouping the rollup serves).

How a sum of days gives distinct leads: a lead that enters a stage twice in a range counts
once. `RollupDay` counts every entry; `RollupRepeat` keeps each entry that had an earlier entry
of the same measure, with that earlier entry's day. Distinct leads entering in [a, b] are the
entries in [a, b] minus the repeats in [a, b] whose previous entry is on or after a (repeats are
rare: a recycled lead that comes back). The cohort of efficiency is the same with exact MQL
entries, and each MQL entry carries whether the lead reached SAL/SQL at or after it.

Which dimensions: every row has the lead's source and one more dimension (`kind`: all, team,
owner or country, with its `value`), so a report with at most one of team, owner and country
among its filters and grouping, plus any source filter or source grouping, reads it. Others
(a team filter grouped by owner, say) are answered live. Dimensions are the lead's at build time.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import TruncDate
from django.utils import timezone

from leads.models import Lead, Stage, Team

from . import rollup_spans
from .filters import ReportFilters, group_key
from .models import ReportRollup, RollupDay, RollupExit, RollupRepeat, RollupSpan, RollupSpanPeriod
from .parallel import cheap, report_settings
from .spans import slices
from .sql import as_date, fetch, quoted_table
from .stages import CHAIN, EXITS, REJECTION_STAGES, entries, rank

KINDS = ("team", "owner", "country")
# Funnel measures: the stages of the funnel report, each a column of RollupDay.
FUNNEL = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST, Stage.RECYCLED, Stage.DISQUALIFIED)
COHORT = "cohort"
COUNTS = ("created", "entries", *FUNNEL, "mql_entries", "mql_entries_sal", "mql_entries_sql")
# A lead field the live reports group by, and the rollup dimension that holds it.
FIELD_KIND = {"source": "source", "team__name": "team", "owner__username": "owner", "country": "country"}


def _stages(stages) -> str:
    names = [str(s) for s in stages]
    assert all(name.replace("_", "").isalpha() for name in names)
    return ", ".join(f"'{name}'" for name in names)


def _measure_sql(measure: str) -> str:
    """SQL over a row of the facts table: does this entry count for `measure`? The same
    conditions as the live funnel (reaching a chain stage from before it; an exit) and cohort."""
    if measure == COHORT:
        return f"to_stage = '{Stage.MQL}'"
    if measure in EXITS:
        return f"to_stage = '{measure}'"
    reached = [s for s in CHAIN if rank(s) >= rank(measure)]
    earlier = [s for s in CHAIN if rank(s) < rank(measure)] + list(EXITS)
    return f"(to_stage IN ({_stages(reached)}) AND from_stage IN ({_stages(earlier)}))"


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


# --- Building -----------------------------------------------------------------------------------


def build() -> ReportRollup | None:
    """Recompute the rollup from the stage history and the leads (one transaction: readers see
    the old rollup until it commits). Returns the state row, or None if another worker is
    building it right now (that build gives the same result)."""
    started = time.perf_counter()
    ReportRollup.objects.get_or_create(pk=1)
    tz = timezone.get_current_timezone()
    with transaction.atomic():
        state = ReportRollup.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            return None
        if connection.vendor == "postgresql":
            report_settings()
        built_at = timezone.now()
        with connection.cursor() as cursor:
            for model in (RollupDay, RollupRepeat, RollupExit, RollupSpan, RollupSpanPeriod):
                cursor.execute(f"DELETE FROM {quoted_table(model)}")
            cursor.execute("DROP TABLE IF EXISTS rollup_facts")
            facts_sql, facts_params = _facts_sql(tz)
            cursor.execute(f"CREATE TEMP TABLE rollup_facts AS {facts_sql}", facts_params)
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE rollup_facts")
            cursor.execute("SELECT COUNT(*) FROM rollup_facts")
            entries = cursor.fetchone()[0]
            created_sql, created_params = _created_sql(tz)
            cursor.execute(_days_sql(created_sql), created_params)
            cursor.execute(_repeats_sql())
            cursor.execute(_exits_sql())
            cursor.execute("DROP TABLE rollup_facts")
            span_bins = rollup_spans.build(cursor, _dims_sql)
        state.built_at = built_at
        state.timezone = timezone.get_current_timezone_name()
        state.entries = entries
        state.span_bins = span_bins
        state.build_seconds = round(time.perf_counter() - started, 3)
        state.save()
    if connection.vendor == "postgresql":
        # VACUUM (outside a transaction only) also marks the pages all-visible, so the
        # velocity report's bin look-ups are index-only scans.
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"{command} {quoted_table(RollupDay)}, {quoted_table(RollupRepeat)}, {quoted_table(RollupExit)},"
                f" {quoted_table(RollupSpan)}, {quoted_table(RollupSpanPeriod)}"
            )
    return state


def _dims_sql(prefix: str = "") -> str:
    return (
        f"COALESCE({prefix}source, '') AS source, COALESCE(CAST({prefix}team AS text), '') AS team,"
        f" COALESCE(CAST({prefix}owner AS text), '') AS owner, COALESCE({prefix}country, '') AS country"
    )


def _facts_sql(tz) -> tuple[str, tuple]:
    """One row per stage entry: its lead's dimensions, its local day, and for an MQL entry whether
    the lead reached SAL and SQL at or after it."""
    qs = (
        entries()
        .annotate(
            f_day=TruncDate("at", tzinfo=tz),
            f_source=F("lead__source"),
            f_team=F("lead__team"),
            f_owner=F("lead__owner"),
            f_country=F("lead__country"),
        )
        .values_list(
            "id",
            "lead_id",
            "at",
            "from_stage",
            "to_stage",
            "reason",
            "f_day",
            "f_source",
            "f_team",
            "f_owner",
            "f_country",
        )
        .order_by()
    )
    sql, params = qs.query.sql_with_params()
    sal = [s for s in CHAIN if rank(s) >= rank(Stage.SAL)]
    sql_ = [s for s in CHAIN if rank(s) >= rank(Stage.SQL)]
    return (
        f"WITH e (id, lead_id, at, from_stage, to_stage, reason, day, source, team, owner, country)"
        f" AS ({sql}),"
        f" l AS (SELECT lead_id, MAX(CASE WHEN to_stage IN ({_stages(sal)}) THEN at END) AS sal_at,"
        f" MAX(CASE WHEN to_stage IN ({_stages(sql_)}) THEN at END) AS sql_at"
        f" FROM e WHERE to_stage IN ({_stages(sal)}) GROUP BY lead_id)"
        f" SELECT e.id, e.lead_id, e.at, e.from_stage, e.to_stage, e.reason, e.day, {_dims_sql('e.')},"
        f" {_flag(f'e.to_stage = {chr(39)}{Stage.MQL}{chr(39)} AND l.sal_at >= e.at')} AS m_sal,"
        f" {_flag(f'e.to_stage = {chr(39)}{Stage.MQL}{chr(39)} AND l.sql_at >= e.at')} AS m_sql"
        f" FROM e LEFT JOIN l ON l.lead_id = e.lead_id",
        params,
    )


def _created_sql(tz) -> tuple[str, tuple]:
    qs = (
        Lead.objects.annotate(f_day=TruncDate("created_at", tzinfo=tz))
        .values_list("f_day", "source", "team", "owner", "country")
        .order_by()
    )
    return qs.query.sql_with_params()


def _days_sql(created_sql: str) -> str:
    entry_counts = ", ".join(
        ["0", "1", *(_flag(_measure_sql(m)) for m in FUNNEL), _flag(_measure_sql(COHORT)), "m_sal", "m_sql"]
    )
    zeros = ", ".join("0" for _ in COUNTS[1:])
    columns = ", ".join(COUNTS)
    sums = ", ".join(f"SUM({c})" for c in COUNTS)
    union = (
        f"u (day, source, team, owner, country, {columns}) AS ("
        f"SELECT day, source, team, owner, country, {entry_counts} FROM rollup_facts"
        f" UNION ALL SELECT day, {_dims_sql()}, 1, {zeros} FROM c)"
    )
    selects = [f"SELECT day, source, 'all', '', {sums} FROM u GROUP BY day, source"]
    selects += [f"SELECT day, source, '{k}', {k}, {sums} FROM u GROUP BY day, source, {k}" for k in KINDS]
    return (
        f"INSERT INTO {quoted_table(RollupDay)} (day, source, kind, value, {columns})"
        f" WITH c (day, source, team, owner, country) AS ({created_sql}), {union} {' UNION ALL '.join(selects)}"
    )


def _repeats_sql() -> str:
    selects = []
    for measure in (*FUNNEL, COHORT):
        condition = _measure_sql(measure)
        selects.append(
            f"SELECT '{measure}' AS measure, lead_id, at, id, day, m_sal, m_sql, source, team, owner, country"
            f" FROM rollup_facts WHERE {condition} AND lead_id IN"
            f" (SELECT lead_id FROM rollup_facts WHERE {condition} GROUP BY lead_id HAVING COUNT(*) > 1)"
        )
    return (
        f"INSERT INTO {quoted_table(RollupRepeat)} (measure, day, prev_day, next_day, reached_sal, reached_sql,"
        " source, team, owner, country)"
        " SELECT measure, day, prev_day, next_day, m_sal = 1, m_sql = 1, source, team, owner, country FROM ("
        " SELECT measure, day, m_sal, m_sql, source, team, owner, country,"
        " LAG(day) OVER (PARTITION BY measure, lead_id ORDER BY at, id) AS prev_day,"
        " LEAD(day) OVER (PARTITION BY measure, lead_id ORDER BY at, id) AS next_day"
        f" FROM ({' UNION ALL '.join(selects)}) m) r WHERE prev_day IS NOT NULL"
    )


def _exits_sql() -> str:
    exits = f"to_stage IN ({_stages(REJECTION_STAGES)})"
    selects = [
        f"SELECT day, source, 'all', '', reason, from_stage, to_stage, COUNT(*) FROM rollup_facts"
        f" WHERE {exits} GROUP BY day, source, reason, from_stage, to_stage"
    ]
    selects += [
        f"SELECT day, source, '{k}', {k}, reason, from_stage, to_stage, COUNT(*) FROM rollup_facts"
        f" WHERE {exits} GROUP BY day, source, {k}, reason, from_stage, to_stage"
        for k in KINDS
    ]
    return (
        f"INSERT INTO {quoted_table(RollupExit)} (day, source, kind, value, reason, from_stage, to_stage, n)"
        f" {' UNION ALL '.join(selects)}"
    )


# --- Reading ------------------------------------------------------------------------------------


@dataclass
class Plan:
    """How a report with these filters and groupings reads the rollup: the dimension (`kind`)
    and the WHERE clauses shared by its tables."""

    kind: str
    value: str | None
    source: str | None
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    built_at: dt.datetime | None = None

    @property
    def filtered(self) -> bool:
        return self.value is not None or self.source is not None

    def where(self, date_from: dt.date, date_to: dt.date) -> tuple[str, list]:
        """For RollupDay and RollupExit."""
        sql = "kind = %s AND day >= %s AND day <= %s"
        params: list[Any] = [self.kind, date_from, date_to]
        if self.value is not None:
            sql += " AND value = %s"
            params.append(self.value)
        if self.source is not None:
            sql += " AND source = %s"
            params.append(self.source)
        return sql, params

    def span_where(self, measure: str, date_from: dt.date, date_to: dt.date) -> tuple[str, list]:
        sql, params = self.repeat_where([], date_from, date_to)
        return f"measure = %s AND {sql}", [measure, *params]

    def repeat_where(self, measures, date_from: dt.date, date_to: dt.date) -> tuple[str, list]:
        sql = f"measure IN ({_stages(measures)}) AND day >= %s AND day <= %s" if measures else "day >= %s AND day <= %s"
        params: list[Any] = [date_from, date_to]
        if self.value is not None:
            sql += f" AND {self.kind} = %s"
            params.append(self.value)
        if self.source is not None:
            sql += " AND source = %s"
            params.append(self.source)
        return sql, params

    def day_column(self, field_name: str) -> str:
        return "source" if FIELD_KIND[field_name] == "source" else "value"

    def repeat_column(self, field_name: str) -> str:
        return FIELD_KIND[field_name]

    def label(self, field_name: str, raw: str) -> Any:
        """The live report's group value for a rollup value: a team's name, a rep's username."""
        kind = FIELD_KIND[field_name]
        if kind in ("source", "country"):
            return raw
        if raw == "":
            return None
        return self.labels.setdefault(kind, {}).get(raw)


def plan(filters: ReportFilters, fields: list[str]) -> Plan | None:
    """The rollup reading for these filters and group fields (lead fields of GROUP_FIELDS), or
    None when the report should run live: the rollup is off, missing, too old, in another time
    zone, or the filters and groupings name two of team, owner and country."""
    max_age = getattr(settings, "REPORTS_ROLLUP_MAX_AGE", 0)
    if not max_age:
        return None
    state = ReportRollup.objects.filter(pk=1).only("built_at", "timezone").first()
    if state is None or state.built_at is None or state.timezone != timezone.get_current_timezone_name():
        return None
    if (timezone.now() - state.built_at).total_seconds() > max_age:
        return None
    kinds = {FIELD_KIND[f] for f in fields} - {"source"}
    if filters.team is not None:
        kinds.add("team")
    if filters.owner:
        kinds.add("owner")
    if filters.country:
        kinds.add("country")
    if len(kinds) > 1:
        return None
    kind = kinds.pop() if kinds else "all"
    value = None
    if kind == "team" and filters.team is not None:
        value = str(filters.team)
    elif kind == "owner" and filters.owner:
        user = get_user_model().objects.filter(username=filters.owner).values_list("pk", flat=True).first()
        value = "?" if user is None else str(user)  # an unknown rep: no rows, as live
    elif kind == "country" and filters.country:
        value = filters.country.upper()
    return Plan(kind=kind, value=value, source=filters.source or None, built_at=state.built_at)


def _fill_labels(plan_: Plan, values: set[str]) -> None:
    ids = [int(v) for v in values if v not in ("", "?")]
    if plan_.kind == "team":
        plan_.labels["team"] = {str(pk): name for pk, name in Team.objects.filter(pk__in=ids).values_list("pk", "name")}
    elif plan_.kind == "owner":
        plan_.labels["owner"] = {
            str(pk): name for pk, name in get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")
        }


def _grouped(
    plan_: Plan,
    fields: list[str],
    day_counts: list[str],
    repeat_counts: list[str],
    measures,
    date_from: dt.date,
    date_to: dt.date,
) -> dict[tuple, tuple]:
    """Sums of `day_counts` per group of `fields`, and `repeat_counts` per group and measure over
    the repeats in the range whose previous entry is in it too (the entries that are not a lead's
    first in the range): {(raw group values...): (day sums, {measure: repeat sums})}."""
    day_cols = [plan_.day_column(f) for f in fields]
    rep_cols = [plan_.repeat_column(f) for f in fields]
    where, params = plan_.where(date_from, date_to)
    select = "".join(f"{c}, " for c in day_cols)
    group = f" GROUP BY {', '.join(day_cols)}" if day_cols else ""
    days = fetch(
        f"SELECT {select}{', '.join(f'SUM({c})' for c in day_counts)} FROM {quoted_table(RollupDay)}"
        f" WHERE {where}{group}",
        params,
    )
    result: dict[tuple, tuple] = {}
    for row in days:
        key = tuple(row[: len(day_cols)])
        result[key] = ([int(v or 0) for v in row[len(day_cols) :]], {})
    if measures:
        rwhere, rparams = plan_.repeat_where(measures, date_from, date_to)
        rselect = "".join(f"{c}, " for c in rep_cols)
        rows = fetch(
            f"SELECT {rselect}measure, {', '.join(repeat_counts)} FROM {quoted_table(RollupRepeat)}"
            f" WHERE {rwhere} AND prev_day >= %s GROUP BY {rselect}measure",
            [*rparams, date_from],
        )
        for row in rows:
            key = tuple(row[: len(rep_cols)])
            if key in result:
                result[key][1][row[len(rep_cols)]] = [int(v or 0) for v in row[len(rep_cols) + 1 :]]
    named = [i for i, f in enumerate(fields) if FIELD_KIND[f] in ("team", "owner")]
    _fill_labels(plan_, {key[i] for key in result for i in named})
    return result


def funnel_counts(plan_: Plan, group: str | None, date_from: dt.date, date_to: dt.date) -> dict[Any, dict]:
    """{group value (None without a group): {stage: distinct leads entering, "lead": created}} for
    the groups with an entry or a new lead in the range."""
    fields = [group] if group else []
    counts = ["created", "entries", *FUNNEL]
    groups = _grouped(plan_, fields, counts, ["COUNT(*)"], FUNNEL, date_from, date_to)
    result = {}
    for key, (sums, repeats) in groups.items():
        values = dict(zip(counts, sums, strict=True))
        if values["created"] + values["entries"] == 0:
            continue
        row = {stage: values[stage] - repeats.get(str(stage), [0])[0] for stage in FUNNEL}
        row[Stage.LEAD] = values["created"]
        result[plan_.label(group, key[0]) if group else None] = row
    return result


def cohort_counts(plan_: Plan, keys: list[str], date_from: dt.date, date_to: dt.date) -> list[dict]:
    """The cohort rows the live efficiency and sources reports count (`selectors`), from the
    rollup: the MQL cohort of the range and how many of it reached SAL and SQL, per group of
    `keys`."""
    groups = _grouped(
        plan_,
        keys,
        ["mql_entries", "mql_entries_sal", "mql_entries_sql"],
        ["COUNT(*)", _sum_flag("reached_sal"), _sum_flag("reached_sql")],
        [COHORT],
        date_from,
        date_to,
    )
    rows = []
    if not keys and not groups:
        groups = {(): ([0, 0, 0], {})}
    for key, (sums, repeats) in groups.items():
        minus = repeats.get(COHORT, [0, 0, 0])
        mql, sal, sql = (s - m for s, m in zip(sums, minus, strict=True))
        if mql <= 0 and keys:
            continue  # live groups are the cohort's; the total is always there
        row = {k: plan_.label(k, raw) for k, raw in zip(keys, key, strict=True)}
        row.update(mql=mql, sal=sal, sql=sql)
        rows.append(row)
    return rows


def _sum_flag(column: str) -> str:
    return f"SUM(CASE WHEN {column} THEN 1 ELSE 0 END)"


def mql_entries_by_day(plan_: Plan, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
    where, params = plan_.where(date_from, date_to)
    rows = fetch(f"SELECT day, SUM(mql_entries) FROM {quoted_table(RollupDay)} WHERE {where} GROUP BY day", params)
    return {as_date(day): int(n) for day, n in rows if n}


def mql_entries_by_group(plan_: Plan, group: str, date_from: dt.date, date_to: dt.date) -> dict[Any, int]:
    groups = _grouped(plan_, [group], ["mql_entries"], [], (), date_from, date_to)
    return {plan_.label(group, key[0]): sums[0] for key, (sums, _) in groups.items() if sums[0]}


def exits(plan_: Plan, group: str | None, date_from: dt.date, date_to: dt.date) -> list[tuple]:
    """(group raw value or None, reason, from_stage, to_stage, count), by count then reason, stage
    left and stage entered, as the live report orders them."""
    where, params = plan_.where(date_from, date_to)
    column = f"{plan_.day_column(group)}, " if group else ""
    rows = fetch(
        f"SELECT {column}reason, from_stage, to_stage, SUM(n) AS count FROM {quoted_table(RollupExit)} WHERE {where}"
        f" GROUP BY {column}reason, from_stage, to_stage ORDER BY count DESC, reason, from_stage, to_stage",
        params,
    )
    if not group:
        return [(None, *row) for row in rows]
    if FIELD_KIND[group] in ("team", "owner"):
        _fill_labels(plan_, {row[0] for row in rows})
    return [(plan_.label(group, row[0]), *row[1:]) for row in rows]


def repeat_recycles(plan_: Plan, group: str | None, date_from: dt.date, date_to: dt.date) -> dict[Any, int]:
    """Leads recycled twice or more by the range's end, once within it: the repeat recycle that is
    a lead's last before the end, in the range."""
    where, params = plan_.repeat_where([Stage.RECYCLED], date_from, date_to)
    column = f"{plan_.repeat_column(group)}, " if group else ""
    rows = fetch(
        f"SELECT {column}COUNT(*) FROM {quoted_table(RollupRepeat)} WHERE {where}"
        f" AND (next_day IS NULL OR next_day > %s){f' GROUP BY {column[:-2]}' if group else ''}",
        [*params, date_to],
    )
    if not group:
        return {None: int(rows[0][0]) if rows else 0}
    if FIELD_KIND[group] in ("team", "owner"):
        _fill_labels(plan_, {row[0] for row in rows})
    return {plan_.label(group, row[0]): int(row[1]) for row in rows}


def span_bins(plan_: Plan, measure: str, sla_hours: float | None) -> dict[str, Any] | None:
    """The bins `distribution` reads a measure from, or None when it sorts the spans instead: a
    filtered report, or bins the rollup could not cut for the SLA as it is now."""
    return None if plan_.filtered else rollup_spans.bins_for(measure, sla_hours, plan_.built_at)


@cheap  # a few milliseconds: no thread of its own
def distributions(
    plan_: Plan,
    cuts: dict[str, tuple[dict[str, Any], float | None]],
    group: str | None,
    date_from: dt.date,
    date_to: dt.date,
) -> dict[str, dict]:
    """`spans.distribution` of the spans starting in the range, for each measure of `cuts`
    (measure: (its bins from `span_bins`, SLA hours)), read from the bins (`rollup_spans`)."""
    results = rollup_spans.distributions(cuts, FIELD_KIND[group] if group else None, date_from, date_to)
    # Reps by id, named as the live report names them ("" for none or a deleted user).
    names = plan_.labels.setdefault("rep", {})
    missing = {int(k) for result in results.values() for (kind, k) in result if kind == "owner" and k}
    if missing:
        users = get_user_model().objects.filter(pk__in=missing).values_list("pk", "username")
        names.update({str(pk): name for pk, name in users})
    return {
        measure: _group_labels(
            plan_,
            group,
            {(kind, names.get(k, "") if kind == "owner" else k): stats for (kind, k), stats in result.items()},
        )
        for measure, result in results.items()
    }


def distribution(
    plan_: Plan, measure: str, group: str | None, date_from: dt.date, date_to: dt.date, *, sla_hours: float | None
) -> dict:
    """`spans.distribution` of the spans starting in the range, by sorting the range's spans
    from RollupSpan (a filtered report, or bins cut at another SLA)."""
    where, params = plan_.span_where(measure, date_from, date_to)
    group_column = f", {plan_.repeat_column(group)} AS group_key" if group else ""
    spans = (
        f"WITH h AS {'MATERIALIZED' if connection.vendor == 'postgresql' else ''}"
        f" (SELECT x, week AS week_key, owner_key{group_column} FROM {quoted_table(RollupSpan)} WHERE {where})"
    )
    return _group_labels(plan_, group, slices(spans, params, sla_hours=sla_hours, group=bool(group)))


def _group_labels(plan_: Plan, group: str | None, result: dict) -> dict:
    """A team's or rep's group keyed by name, as the live report keys it."""
    if not group or FIELD_KIND[group] not in ("team", "owner"):
        return result
    _fill_labels(plan_, {k for (kind, k) in result if kind == "group"})
    return {
        (kind, group_key(plan_.label(group, k)) if kind == "group" else k): stats for (kind, k), stats in result.items()
    }
