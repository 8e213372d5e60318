"""Reading the report read model: the count reports (funnel, efficiency, sources, rejections,
commitment) added up per day, so a year is a few thousand small rows instead of millions of
stage entries. `reports.readmodel` keeps the tables up to date from the stage history;
this module answers the selectors from them. Read, its numbers are those of the live queries
on the same data (tests/reports/test_rollup.py checks every report, filter and grouping it
serves), with each row's dimensions frozen when it was counted.

How a sum of days gives distinct leads: a lead that enters a stage twice in a range counts
once. `RollupDay` counts every entry; `RollupRepeat` keeps each entry that had an earlier entry
of the same measure, with that earlier entry's day. Distinct leads entering in [a, b] are the
entries in [a, b] minus the repeats in [a, b] whose previous entry is on or after a (repeats are
rare: a recycled lead that comes back). The cohort of efficiency is the same with exact MQL
entries, and each MQL entry carries whether the lead reached SAL/SQL at or after it.

Which dimensions: every row has the lead's source and one more dimension (`kind`: all, team,
owner or country, with its `value`), so a report with at most one of team, owner and country
among its filters and grouping, plus any source filter or source grouping, reads it. Others
(a team filter grouped by owner, say) are answered live, as is velocity (its percentiles).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from leads.models import Stage, Team

from .filters import ReportFilters
from .models import ReadModelState, RollupDay, RollupExit, RollupRepeat
from .sql import as_date, fetch, quoted_table
from .stages import CHAIN, EXITS, rank

KINDS = ("team", "owner", "country")
# Funnel measures: the stages of the funnel report, each a column of RollupDay.
FUNNEL = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON, Stage.LOST, Stage.RECYCLED, Stage.DISQUALIFIED)
COHORT = "cohort"
COUNTS = ("created", "entries", *FUNNEL, "mql_entries", "mql_entries_sal", "mql_entries_sql")
# A lead field the live reports group by, and the rollup dimension that holds it.
FIELD_KIND = {"source": "source", "team__name": "team", "owner__username": "owner", "country": "country"}


def stages_sql(stages) -> str:
    names = [str(s) for s in stages]
    assert all(name.replace("_", "").isalpha() for name in names)
    return ", ".join(f"'{name}'" for name in names)


def measure_sql(measure: str) -> str:
    """SQL over a row of the facts table: does this entry count for `measure`? The same
    conditions as the live funnel (reaching a chain stage from before it; an exit) and cohort."""
    if measure == COHORT:
        return f"to_stage = '{Stage.MQL}'"
    if measure in EXITS:
        return f"to_stage = '{measure}'"
    reached = [s for s in CHAIN if rank(s) >= rank(measure)]
    earlier = [s for s in CHAIN if rank(s) < rank(measure)] + list(EXITS)
    return f"(to_stage IN ({stages_sql(reached)}) AND from_stage IN ({stages_sql(earlier)}))"


def flag_sql(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


# --- Reading ------------------------------------------------------------------------------------


@dataclass
class Plan:
    """How a report with these filters and groupings reads the rollup: the dimension (`kind`)
    and the WHERE clauses shared by its tables."""

    kind: str
    value: str | None
    source: str | None
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    as_of: dt.datetime | None = None

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
        sql = (
            f"measure IN ({stages_sql(measures)}) AND day >= %s AND day <= %s"
            if measures
            else "day >= %s AND day <= %s"
        )
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
    """The read-model reading for these filters and group fields (lead fields of GROUP_FIELDS),
    or None when the report should run live: the read model is off (`REPORTS_READ_MODEL`), has
    never caught up, counts days in another time zone, or the filters and groupings name two
    of team, owner and country."""
    state = current_state()
    if state is None:
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
    return Plan(kind=kind, value=value, source=filters.source or None, as_of=state.as_of)


def current_state() -> ReadModelState | None:
    """The read model's state when reports may read it (else None: they run live)."""
    if not getattr(settings, "REPORTS_READ_MODEL", True):
        return None
    state = ReadModelState.objects.filter(pk=1).only("as_of", "timezone").first()
    if state is None or state.as_of is None or state.timezone != timezone.get_current_timezone_name():
        return None
    return state


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
        ["COUNT(*)", _sumflag_sql("reached_sal"), _sumflag_sql("reached_sql")],
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


def _sumflag_sql(column: str) -> str:
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
