"""Business hours in SQL: the working time between two moments on a calendar, as arithmetic on
the business-day tables sla keeps (`sla.business_days` writes them) instead of a walk over days.

A calendar's working seconds before a moment are those of the intervals before it plus the part
of the interval it falls in; the difference of two such numbers is the business time between
two moments. The velocity report (`reports.spans`) measures every span so: both moments joined
to their UTC day (`BusinessUtcDay`, one hash join per report), an index probe of `BusinessDay`
only for a moment outside the table's days.
"""

from __future__ import annotations

import datetime as dt

from sla.business_days import UTC_DAY_SECONDS
from sla.models import BusinessDay, BusinessUtcDay

from .sql import least, on_postgresql


def day_number_sql(epoch_sql: str) -> str:
    """The `BusinessUtcDay.number` of a moment (epoch seconds). SQLite's CAST truncates, which
    is the floor for every moment after 1970; earlier ones find no UTC day and fall back."""
    if on_postgresql():
        return f"CAST(FLOOR({epoch_sql} / {UTC_DAY_SECONDS}.0) AS integer)"
    return f"CAST({epoch_sql} / {UTC_DAY_SECONDS}.0 AS INTEGER)"


def _probe_worked_before(epoch_sql: str, calendar_id: int) -> str:
    """SQL for the calendar's working seconds before the moment `epoch_sql` (seconds): the
    latest working interval starting at or before it, found by an index probe."""
    return (
        "COALESCE((SELECT bd.seconds_before + "
        + least(f"{epoch_sql} - bd.start_epoch", "bd.end_epoch - bd.start_epoch")
        + f" FROM {BusinessDay._meta.db_table} bd WHERE bd.calendar_id = {int(calendar_id)}"
        f" AND bd.start_epoch <= {epoch_sql} ORDER BY bd.start_epoch DESC LIMIT 1), 0)"
    )


def worked_before_sql(epoch_sql: str, day: str, calendar_id: int) -> str:
    """The calendar's working seconds before the moment `epoch_sql`, from the moment's UTC day
    `day` (joined on its number): the latest of the intervals starting inside it that has started,
    else the one in force when it began. A moment with no UTC day (before the calendar's first or
    after its last working day) takes the index probe."""

    def interval(prefix: str) -> str:
        start = f"{day}.{prefix}_start"
        return f"{day}.{prefix}_before + " + least(f"{epoch_sql} - {start}", f"{day}.{prefix}_end - {start}")

    return (
        f"(CASE WHEN {day}.later_start <= {epoch_sql} THEN {interval('later')}"
        f" WHEN {day}.next_start <= {epoch_sql} THEN {interval('next')}"
        f" WHEN {day}.anchor_start <= {epoch_sql} THEN {interval('anchor')}"
        f" ELSE {_probe_worked_before(epoch_sql, calendar_id)} END)"
    )


def hours_between_sql(calendar_id: int, first: dt.datetime, last: dt.datetime) -> tuple[str, str]:
    """SQL for the business hours from `t0` to `t1` (epoch seconds columns of the row) on the
    calendar, and the joins of their UTC days `d0` and `d1` it reads, for moments `t0` between
    `first` and `last` and `t1` after `first` (a span's start and end)."""
    calendar = int(calendar_id)
    value_sql = f"(({worked_before_sql('t1', 'd1', calendar)}) - ({worked_before_sql('t0', 'd0', calendar)})) / 3600.0"
    # Only the days the moments can fall in, so the hash tables stay small: starts lie in
    # the range, ends after its start. A moment outside them still gets its exact value.
    first_day = int(first.timestamp() // UTC_DAY_SECONDS) - 1
    last_day = int(last.timestamp() // UTC_DAY_SECONDS) + 1
    table = BusinessUtcDay._meta.db_table
    days = (
        f" LEFT JOIN {table} d0 ON d0.calendar_id = {calendar} AND d0.number BETWEEN {first_day} AND {last_day}"
        f" AND d0.number = {day_number_sql('t0')}"
        f" LEFT JOIN {table} d1 ON d1.calendar_id = {calendar} AND d1.number >= {first_day}"
        f" AND d1.number = {day_number_sql('t1')}"
    )
    return value_sql, days
