"""Behavior scores computed by PostgreSQL for the set-based rescore.

Reading ten million events into Python to rescore a million leads would take minutes; here the
database ranks each lead's matching events per rule (newest first, for caps), applies the
half-life decay and sums, for a whole id range in one query. Fit, knock-outs and the decision
stay in the pure engine (they read only lead columns, and Python's regex syntax is the one the
SPEC promises). A behavior filter with a regex has no faithful SQL translation, so
`behavior_sql` returns None and the caller falls back to the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import connection

from leads.models import Event

from . import engine


def _filter_sql(condition: engine.Condition) -> tuple[str, list[Any]] | None:
    value = "(e.properties ->> %s)"
    params: list[Any] = [condition.field]
    op = condition.operator
    if op == "contains":
        return f"position(lower(%s) in lower({value})) > 0", [str(condition.value), *params]
    if op == "equals":
        return f"lower({value}) = lower(%s)", [*params, str(condition.value)]
    if op == "in":
        return f"lower({value}) = ANY(%s)", [*params, [str(v).casefold() for v in condition.value]]
    if op == "is_empty":
        return f"coalesce(btrim({value}), '') = ''", params
    number = f"(CASE WHEN {value} ~ '^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$' THEN ({value})::double precision END)"
    if op == "gte":
        return f"{number} >= %s", [*params, *params, float(condition.value)]
    if op == "lte":
        return f"{number} <= %s", [*params, *params, float(condition.value)]
    if op == "between":
        low, high = (float(v) for v in condition.value)
        return f"{number} BETWEEN %s AND %s", [*params, *params, low, high]
    return None  # regex


def behavior_sql(definition: engine.CompiledDefinition, *, by_ids: bool = False) -> tuple[str, list[Any]] | None:
    """SQL selecting (lead_id, behavior) as of a moment for the leads with id in a range (or,
    `by_ids`, in a list) — `behavior_scores` fills those in — or None when a rule cannot be
    expressed in SQL."""
    parts: list[str] = []
    params: list[Any] = []
    table = Event._meta.db_table
    leads = "e.lead_id = ANY(%(ids)s)" if by_ids else "e.lead_id BETWEEN %(lo)s AND %(hi)s"
    for index, rule in enumerate(definition.behavior_rules):
        where = f"e.type = %s AND {leads}"
        rule_params: list[Any] = [rule.event_type]
        if rule.filter is not None:
            translated = _filter_sql(rule.filter)
            if translated is None:
                return None
            where += f" AND {translated[0]}"
            rule_params += translated[1]
        parts.append(f"SELECT e.lead_id, e.occurred_at, {index} AS rule FROM {table} e WHERE {where}")
        params += rule_params
    if not parts:
        return "SELECT NULL::bigint, NULL::double precision WHERE false", []
    rules = ", ".join(
        f"({index}, %s::double precision, %s::double precision, %s::integer)"
        for index in range(len(definition.behavior_rules))
    )
    for rule in definition.behavior_rules:
        params += [rule.points, rule.half_life_days, rule.max_occurrences]
    sql = f"""
        WITH matched AS ({" UNION ALL ".join(parts)}),
        ranked AS (
            SELECT m.lead_id, m.occurred_at, m.rule,
                   row_number() OVER (PARTITION BY m.lead_id, m.rule ORDER BY m.occurred_at DESC) AS n
            FROM matched m
        )
        SELECT r.lead_id,
               sum(p.points * CASE
                   WHEN p.half_life IS NULL OR r.occurred_at >= %(now)s THEN 1.0
                   ELSE power(0.5, extract(epoch FROM (%(now)s - r.occurred_at)) / 86400.0 / p.half_life)
               END)
        FROM ranked r JOIN (VALUES {rules}) AS p(rule, points, half_life, cap) ON p.rule = r.rule
        WHERE p.cap IS NULL OR r.n <= p.cap
        GROUP BY r.lead_id
    """
    return sql, params


def behavior_scores(
    definition: engine.CompiledDefinition,
    sql: tuple[str, list[Any]],
    *,
    now: dt.datetime,
    lo: int | None = None,
    hi: int | None = None,
    ids: Sequence[int] | None = None,
) -> dict[int, float]:
    """Run `behavior_sql`'s query for the leads in [lo, hi], or in `ids` for a `by_ids` query:
    {lead id: behavior} for the leads with any scoring event (the others score 0)."""
    text, params = sql
    # Positional parameters for the rules, named ones for the leads and the moment: rewrite the
    # named ones into positions so one cursor.execute runs it.
    ordered: list[Any] = []
    out = []
    i = 0
    positional = iter(params)
    while i < len(text):
        if text.startswith("%(ids)s", i):
            out.append("%s::bigint[]")
            ordered.append(list(ids or ()))
            i += 7
        elif text.startswith("%(lo)s", i):
            out.append("%s")
            ordered.append(lo)
            i += 6
        elif text.startswith("%(hi)s", i):
            out.append("%s")
            ordered.append(hi)
            i += 6
        elif text.startswith("%(now)s", i):
            out.append("%s")
            ordered.append(now)
            i += 7
        elif text.startswith("%s", i):
            out.append("%s")
            ordered.append(next(positional))
            i += 2
        else:
            out.append(text[i])
            i += 1
    with connection.cursor() as cursor:
        cursor.execute("".join(out), ordered)
        return {
            lead_id: round(engine.clamp(float(total)), 2) for lead_id, total in cursor.fetchall() if lead_id is not None
        }


def latest_hand_raisers(
    definition: engine.CompiledDefinition,
    *,
    lo: int | None = None,
    hi: int | None = None,
    ids: Sequence[int] | None = None,
) -> dict[int, dt.datetime]:
    """{lead id: newest hand-raiser event} for the leads in [lo, hi] or in `ids`."""
    if not definition.hand_raisers:
        return {}
    params: list[Any]
    if ids is not None:
        leads, params = "lead_id = ANY(%s::bigint[])", [list(ids)]
    else:
        leads, params = "lead_id BETWEEN %s AND %s", [lo, hi]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT lead_id, max(occurred_at) FROM {Event._meta.db_table} "
            f"WHERE type = ANY(%s) AND {leads} GROUP BY lead_id",
            [sorted(definition.hand_raisers), *params],
        )
        return dict(cursor.fetchall())


def range_starts(table: str, *, stages: Sequence[str], size: int) -> list[int]:
    """The first id of every `size` consecutive (by id) leads in `stages`: the bounds of the
    rescore's ranges, in one pass over the table instead of one keyset query per range."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM {table} "
            "WHERE stage = ANY(%s)) AS numbered WHERE n %% %s = 1 ORDER BY id",
            [[str(stage) for stage in stages], size],
        )
        return [row[0] for row in cursor.fetchall()]
