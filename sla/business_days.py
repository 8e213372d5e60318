"""The business-day tables of a calendar (`BusinessDay`, `BusinessUtcDay`), written here.

They turn business hours into SQL arithmetic: the reports' velocity (`reports.business_hours`)
measures business time between two moments as a difference of two looked-up numbers instead of a
walk over days in Python. The tables are derived data: `ensure_business_days` rewrites a
calendar's rows whenever its definition (time zone, working days and hours, holidays) changes,
and is a cheap check when it has not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from django.db import connection, transaction
from django.db.models import Max, Min

from .calendar import Calendar
from .models import BusinessCalendar, BusinessDay, BusinessUtcDay

# The length of a `BusinessUtcDay`, in seconds: a moment's day number is its epoch seconds // this.
UTC_DAY_SECONDS = 86_400
# The business-day table covers these years; velocities outside it would not be meaningful.
CALENDAR_FIRST_DAY = dt.date(2000, 1, 1)
CALENDAR_LAST_DAY = dt.date(2045, 12, 31)


def _calendar_signature(calendar: Calendar) -> str:
    payload = json.dumps(
        [
            calendar.tz,
            sorted(calendar.working_days),
            calendar.start.isoformat(),
            calendar.end.isoformat(),
            sorted(d.isoformat() for d in calendar.holidays),
        ]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_business_days(business_calendar: BusinessCalendar) -> Calendar:
    """Make the `BusinessDay` and `BusinessUtcDay` rows of a calendar match its definition
    (idempotent).

    One cheap query (two index look-ups) when they already match; a rebuild of ~12,000 working
    days and ~17,000 UTC days after the calendar changed. Both are written in one transaction,
    so the UTC days' signature vouches for the working days too. Two workers rebuilding at once
    both write the same rows: the unique constraints and the transaction make the second one's
    insert a no-op.
    """
    calendar = business_calendar.as_calendar()
    signature = _calendar_signature(calendar)
    # Both ends of the (calendar, signature) index: equal to this signature when all rows are.
    current = BusinessUtcDay.objects.filter(calendar=business_calendar).aggregate(
        lowest=Min("signature"), highest=Max("signature")
    )
    if current["lowest"] == current["highest"] == signature:
        return calendar
    rows = []
    seconds = 0.0
    day = CALENDAR_FIRST_DAY
    while day <= CALENDAR_LAST_DAY:
        interval = calendar.interval(day)
        if interval is not None:
            begin, finish = interval[0].timestamp(), interval[1].timestamp()
            rows.append(
                BusinessDay(
                    calendar=business_calendar,
                    signature=signature,
                    day=day,
                    start_epoch=begin,
                    end_epoch=finish,
                    seconds_before=seconds,
                )
            )
            seconds += finish - begin
        day += dt.timedelta(days=1)
    utc_days = _utc_days(business_calendar, signature, rows)
    with transaction.atomic():
        BusinessDay.objects.filter(calendar=business_calendar).exclude(signature=signature).delete()
        BusinessDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        BusinessUtcDay.objects.filter(calendar=business_calendar).exclude(signature=signature).delete()
        BusinessUtcDay.objects.bulk_create(utc_days, ignore_conflicts=True, batch_size=2000)
    if connection.vendor == "postgresql":
        # Fresh statistics for the rebuilt tables: with the stale ones (a handful of rows, or none
        # where autovacuum is off) the planner joins every span to every day in a nested loop,
        # and the velocity report over a year takes seconds instead of under one.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {BusinessDay._meta.db_table}, {BusinessUtcDay._meta.db_table}")
    return calendar


def _utc_days(business_calendar: BusinessCalendar, signature: str, days: list[BusinessDay]) -> list[BusinessUtcDay]:
    """The UTC days from the first working interval to the day after the last (`days` in order)."""
    if not days:
        return []
    result = []
    anchor: BusinessDay | None = None
    index = 0
    first, last = int(days[0].start_epoch // UTC_DAY_SECONDS), int(days[-1].end_epoch // UTC_DAY_SECONDS)
    for number in range(first, last + 2):
        begin, finish = number * UTC_DAY_SECONDS, (number + 1) * UTC_DAY_SECONDS
        while index < len(days) and days[index].start_epoch <= begin:
            anchor = days[index]
            index += 1
        starting = [d for d in days[index : index + 3] if d.start_epoch < finish]
        if len(starting) > 2:
            continue  # no real time zone does this; the per-moment look-up covers it
        following, later = (*starting, None, None)[:2]
        result.append(
            BusinessUtcDay(
                calendar=business_calendar,
                signature=signature,
                number=number,
                **_interval_fields("anchor", anchor),
                **_interval_fields("next", following),
                **_interval_fields("later", later),
            )
        )
    return result


def _interval_fields(prefix: str, day: BusinessDay | None) -> dict[str, float | None]:
    return {
        f"{prefix}_start": day.start_epoch if day else None,
        f"{prefix}_end": day.end_epoch if day else None,
        f"{prefix}_before": day.seconds_before if day else None,
    }
