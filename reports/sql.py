"""The SQL toolkit of the reports: fragments that differ between SQLite and PostgreSQL, written
once, and the two helpers the rollup modules run their raw SQL with.

Pure text-building (plus `fetch`): no models imported, so every other reports module can use it
(the bottom layer, with `filters` and `stages` just above). The reports build their SQL by hand
where the ORM cannot say it (window functions over a stream of starts and ends, percentiles,
the rollup's set-based build); these pieces keep the two databases giving the same numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from leadflow.db_router import report_alias


def on_postgresql() -> bool:
    """Whether the default connection is PostgreSQL (else SQLite): the two dialects the reports
    speak."""
    return connection.vendor == "postgresql"


def least(a: str, b: str) -> str:
    """SQL for the smaller of two values: SQLite's two-argument MIN() is its LEAST()."""
    return f"LEAST({a}, {b})" if on_postgresql() else f"MIN({a}, {b})"


def epoch_seconds_sql(column: str) -> str:
    """SQL for the seconds since the Unix epoch of a datetime column, as a float, on SQLite and
    PostgreSQL."""
    if connection.vendor == "postgresql":
        # date_part() divides the microseconds as a float, EXTRACT() as a numeric then rounded
        # to a float: the same correctly rounded number, without numeric arithmetic per row.
        return f"date_part('epoch', {column})"
    # julianday() is a float of days; rounding to the millisecond gives back the exact seconds,
    # so "exactly at the SLA" compares equal on SQLite as it does on PostgreSQL.
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def interpolated_percentile_sql(p: float) -> str:
    """SQLite's percentile_cont(p) over `x` in each group of a slice's rows (`rn`, `n`: see
    `reports.spans.slices`): the linear interpolation at position 1 + p·(n−1), between the row at
    its floor and the next one. PostgreSQL uses its own, both fractions in one call so each group
    is sorted once rather than twice."""
    pos = f"(1 + {p} * (n - 1))"
    lo = f"CAST({pos} AS INTEGER)"
    return (
        f"(MAX(CASE WHEN rn = {lo} THEN x END) + ({pos} - {lo}) * "
        f"(COALESCE(MAX(CASE WHEN rn = {lo} + 1 THEN x END), MAX(CASE WHEN rn = {lo} THEN x END))"
        f" - MAX(CASE WHEN rn = {lo} THEN x END)))"
    )


def quoted_table(model: type[models.Model]) -> str:
    """A model's table name, quoted for raw SQL."""
    return connection.ops.quote_name(model._meta.db_table)


def read_connection() -> BaseDatabaseWrapper:
    """The connection a report reads on: the replica inside `leadflow.db_router.report_reads`
    when there is one, else the default."""
    return connections[report_alias()]


def fetch(sql: str, params: list) -> list[tuple]:
    """Every row of a raw report query, on the reading connection (`read_connection`)."""
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_date(value: Any) -> dt.date:
    """A date column's value as a date: PostgreSQL gives one, SQLite an ISO string (or a date and
    time, for a truncated week)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
