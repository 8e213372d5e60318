"""Velocity's spans in the report rollup, and their percentiles without sorting a whole range.

The build (`build`, part of `rollup.build`'s transaction) measures every span velocity reports
as the live report does (`spans.span_sql`) into `RollupSpan`, and cuts each measure's
lengths into about `BINS` bins holding as many spans each (bin i: lengths in (upper[i-1],
upper[i]]; a length many spans share gets a bin of its own, and the SLA's hours are a bound).
`RollupSpanPeriod` then counts the spans started up to the end of each half-week (Wednesday,
Sunday) in each bin and the bins below it, for each grouping the unfiltered report shows:
overall (and so by week), by rep, and by each lead dimension it groups by.

Reading (`distributions`, the three measures in three queries): a range's spans up to each bin
are the difference of two rows, give or take the spans of at most two days at each end, counted
from `RollupSpan`. A percentile's rank (the backend's `percentile_cont` interpolates between the
values at two ranks) is found in its bin by bisection over those counts; only the range's spans
of that bin are sorted, in one query for every group's ranks, and a bin whose lengths are all
equal (0 hours, say) needs none. The share within the SLA is the count up to the SLA's bound.
The answer is the sort's: tests/reports/test_rollup.py compares both on random spans with 2, 5
and 128 bins, ranges starting and ending on every day of the week.

A filtered report (a source, a team, a rep or a country), a measure with an unmeasured span, or
an SLA changed since the build sorts the range's spans from `RollupSpan` instead
(`rollup.distribution`), as the rollup did before it had bins.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from typing import Any

from django.db.models import Max, Min

from leads.models import StageTransition

from .filters import ReportFilters, bounds
from .models import ReportRollup, RollupSpan, RollupSpanPeriod
from .spans import span_sql, velocity_clocks, velocity_spans
from .sql import as_date, fetch, on_postgresql, quoted_table

BINS = 128
# The groupings `RollupSpanPeriod` keeps: overall, by rep after the start, by lead dimension.
GROUP_KINDS = ("source", "team", "owner", "country")
WEEK = dt.timedelta(days=7)
HALF = dt.timedelta(days=3)  # Monday to Thursday: where a week's second half starts
DAY = dt.timedelta(days=1)


def _groupings(kinds) -> list[tuple[str, str, str]]:
    """(kind literal, its value's SQL, GROUP BY columns) over `RollupSpan` columns: by rep after
    the start (its id as text, "" for none) and by each lead dimension of `kinds`."""
    text = "text" if on_postgresql() else "TEXT"
    rep = ("'rep'", f"COALESCE(CAST(owner_key AS {text}), '')", ", owner_key")
    return [rep, *((f"'{kind}'", kind, f", {kind}") for kind in kinds)]


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


# --- Building -----------------------------------------------------------------------------------


def build(cursor, dims_sql) -> dict[str, Any]:
    """Fill `RollupSpan` and `RollupSpanPeriod` (emptied by the caller) from the stage history;
    return the bins for `ReportRollup.span_bins`. `dims_sql(prefix)` selects the lead's
    dimensions as `rollup` stores them."""
    cursor.execute("DROP TABLE IF EXISTS rollup_spans")
    cursor.execute(
        "CREATE TEMP TABLE rollup_spans (measure varchar(8), x double precision, week date, day date,"
        " owner_key integer, source varchar(100), team varchar(150), owner varchar(150), country varchar(150))"
    )
    moments = StageTransition.objects.aggregate(first=Min("at"), last=Max("at"))
    if moments["first"] is None:
        cursor.execute("DROP TABLE rollup_spans")
        return {}
    start, end = bounds(moments["first"].date() - DAY, moments["last"].date() + DAY)
    clocks = velocity_clocks()
    keys = {f"l_{kind}": kind for kind in GROUP_KINDS}
    # The week's Monday as a date (SQLite's truncation gives a date and time as text).
    week = "week_key" if on_postgresql() else "date(week_key)"
    for name, span in velocity_spans(ReportFilters(), start, end).items():
        ctes, spans, params = span_sql(span, clock=clocks[name], keys=keys, day_key=True)
        cursor.execute(
            "INSERT INTO rollup_spans (measure, x, week, day, owner_key, source, team, owner, country)"
            f" WITH {ctes} SELECT '{name}', x, {week}, day_key, owner_key, {dims_sql('l_')} FROM ({spans}) s",
            params,
        )
    bins: dict[str, Any] = {}
    for name, clock in clocks.items():
        bins[name] = _cut(cursor, name, None if clock is None else clock.hours)
    bin_sql = _bin_sql(bins)
    cases = " ".join(f"WHEN '{name}' THEN {sql}" for name, (sql, _) in bin_sql.items())
    case_params = [p for _, params in bin_sql.values() for p in params]
    cursor.execute(
        f"INSERT INTO {quoted_table(RollupSpan)} (measure, x, week, day, owner_key, source, team, owner, country, bin)"
        " SELECT measure, x, week, day, owner_key, source, team, owner, country,"
        f" CASE WHEN x IS NULL THEN NULL ELSE CASE measure {cases} END END"
        " FROM rollup_spans s ORDER BY measure, day",
        case_params,
    )
    cursor.execute("SELECT MIN(week), MAX(week), COUNT(*) FROM rollup_spans")
    first_week, last_week, count = cursor.fetchone()
    last_period = None if last_week is None else as_date(last_week) + HALF
    cursor.execute("DROP TABLE rollup_spans")
    if first_week is None:
        return {}
    assert last_period is not None  # MIN and MAX of the same rows are NULL together
    cursor.execute(
        f"SELECT measure, bin, MIN(x), MAX(x) FROM {quoted_table(RollupSpan)} WHERE bin IS NOT NULL"
        " GROUP BY measure, bin"
    )
    for measure, bin_, low, high in cursor.fetchall():
        bins[measure]["low"][bin_] = low
        bins[measure]["high"][bin_] = high
    # Every count fits the digits of the number of spans.
    width = len(str(count))
    _build_periods(cursor, bins, as_date(first_week), last_period, width)
    bins["last_period"] = last_period.isoformat()
    bins["width"] = width
    return bins


def _cut(cursor, measure: str, sla_hours: float | None) -> dict[str, Any]:
    """The bins of a measure: bounds at every (n / BINS)-th length in order, around each length
    shared by a quarter of that many spans or more, and at the SLA."""
    cursor.execute("SELECT COUNT(x), COUNT(*) FROM rollup_spans WHERE measure = %s", [measure])
    measured, count = cursor.fetchone()
    step = max(1, math.ceil(measured / BINS))
    cursor.execute(
        "SELECT x FROM (SELECT x, ROW_NUMBER() OVER (ORDER BY x) AS rn FROM rollup_spans"
        " WHERE measure = %s AND x IS NOT NULL) q WHERE rn %% %s = 0",
        [measure, step],
    )
    upper = {float(row[0]) for row in cursor.fetchall()}
    # A length many spans share (0 hours, a whole number of working days) gets a bin of its own,
    # bounded by the next smaller length: a rank in it needs no sort.
    cursor.execute(
        "SELECT x, below FROM (SELECT x, n, LAG(x) OVER (ORDER BY x) AS below FROM"
        " (SELECT x, COUNT(*) AS n FROM rollup_spans WHERE measure = %s AND x IS NOT NULL GROUP BY x) d) q"
        " WHERE n >= %s",
        [measure, max(2, step // 4)],
    )
    for x, below in cursor.fetchall():
        upper.update(float(v) for v in (x, below) if v is not None)
    if sla_hours is not None:
        upper.add(float(sla_hours))
    bounds = sorted(upper)
    return {
        "upper": bounds,
        "low": [None] * (len(bounds) + 1),
        "high": [None] * (len(bounds) + 1),
        "sla": sla_hours,
        "unmeasured": count - measured,
    }


def _bin_sql(bins: dict[str, Any]) -> dict[str, tuple[str, list]]:
    """Per measure, SQL for a span's bin: how many bounds lie below its length `x`."""
    result: dict[str, tuple[str, list]] = {}
    for name, cut in bins.items():
        bounds = cut["upper"]
        if not bounds:
            result[name] = ("0", [])
        elif on_postgresql():
            # width_bucket counts the bounds at or below its operand: negated, those at or above x.
            result[name] = (
                f"{len(bounds)} - width_bucket(-x, CAST(%s AS double precision[]))",
                [sorted(-b for b in bounds)],
            )
        else:
            result[name] = ("(" + " + ".join("CASE WHEN x > %s THEN 1 ELSE 0 END" for _ in bounds) + ")", bounds)
    return result


def _build_periods(cursor, bins: dict[str, Any], first: dt.date, last: dt.date, width: int) -> None:
    """`RollupSpanPeriod`: every group's counts up to each half-week and bin, from its first
    half-week to the last, each count `width` digits."""
    cursor.execute("DROP TABLE IF EXISTS rollup_span_periods")
    cursor.execute("CREATE TEMP TABLE rollup_span_periods (period date)")
    periods = []
    monday = first
    while monday <= last:
        periods += [[monday], [monday + HALF]]
        monday += WEEK
    cursor.executemany("INSERT INTO rollup_span_periods (period) VALUES (%s)", periods)
    cursor.execute("DROP TABLE IF EXISTS rollup_span_bins")
    cursor.execute("CREATE TEMP TABLE rollup_span_bins (measure varchar(8), bin integer)")
    cursor.executemany(
        "INSERT INTO rollup_span_bins (measure, bin) VALUES (%s, %s)",
        [[name, b] for name, cut in bins.items() for b in range(len(cut["upper"]) + 1)],
    )
    # A span's half-week: its week's Monday, or the Thursday from Thursday on.
    if on_postgresql():
        period = "week + CASE WHEN day - week >= 3 THEN 3 ELSE 0 END"
    else:
        period = "CASE WHEN julianday(day) - julianday(week) >= 3 THEN date(week, '+3 days') ELSE week END"
    span = quoted_table(RollupSpan)
    groupings = [("'all'", "''", ""), *_groupings(GROUP_KINDS)]
    cells = " UNION ALL ".join(
        f"SELECT measure, {kind} AS kind, {value} AS value, period, bin, COUNT(*) AS n"
        f" FROM (SELECT measure, owner_key, {', '.join(GROUP_KINDS)}, bin, {period} AS period FROM {span}"
        f" WHERE bin IS NOT NULL) s GROUP BY measure{group}, period, bin"
        for kind, value, group in groupings
    )
    # Tables, not CTEs, so that PostgreSQL knows their sizes and hashes the grid's join.
    cursor.execute("DROP TABLE IF EXISTS rollup_span_cells")
    cursor.execute(f"CREATE TEMP TABLE rollup_span_cells AS {cells}")
    cursor.execute("DROP TABLE IF EXISTS rollup_span_grid")
    cursor.execute(
        "CREATE TEMP TABLE rollup_span_grid AS SELECT f.measure, f.kind, f.value, p.period, b.bin"
        " FROM (SELECT measure, kind, value, MIN(period) AS first FROM rollup_span_cells"
        " GROUP BY measure, kind, value) f"
        " JOIN rollup_span_periods p ON p.period >= f.first JOIN rollup_span_bins b ON b.measure = f.measure"
    )
    if on_postgresql():
        cursor.execute("ANALYZE rollup_span_cells, rollup_span_grid")
        joined = f"string_agg(lpad(CAST(upto AS text), {int(width)}, '0'), '' ORDER BY bin)"
        ordered = "upto"
    else:
        # SQLite's group_concat follows the order of the rows it is given.
        joined = "group_concat(printf('%0" + str(int(width)) + "d', upto), '')"
        ordered = "(SELECT * FROM upto ORDER BY measure, kind, value, period, bin)"
    cursor.execute(
        f"INSERT INTO {quoted_table(RollupSpanPeriod)} (measure, kind, value, period, counts)"
        " WITH running AS (SELECT g.measure, g.kind, g.value, g.period, g.bin, SUM(COALESCE(c.n, 0)) OVER"
        " (PARTITION BY g.measure, g.kind, g.value, g.bin ORDER BY g.period ROWS UNBOUNDED PRECEDING) AS total"
        " FROM rollup_span_grid g LEFT JOIN rollup_span_cells c ON c.measure = g.measure AND c.kind = g.kind"
        " AND c.value = g.value AND c.period = g.period AND c.bin = g.bin),"
        " upto AS (SELECT measure, kind, value, period, bin, SUM(total) OVER"
        " (PARTITION BY measure, kind, value, period ORDER BY bin ROWS UNBOUNDED PRECEDING) AS upto FROM running)"
        f" SELECT measure, kind, value, period, {joined} FROM {ordered} r GROUP BY measure, kind, value, period"
    )
    cursor.execute("DROP TABLE rollup_span_cells")
    cursor.execute("DROP TABLE rollup_span_grid")
    cursor.execute("DROP TABLE rollup_span_periods")
    cursor.execute("DROP TABLE rollup_span_bins")


# --- Reading ------------------------------------------------------------------------------------


# Bins parsed from `ReportRollup.span_bins`, for the build that cut them.
_CUTS: dict[tuple, dict[str, Any] | None] = {}


def bins_for(measure: str, sla_hours: float | None, built_at: dt.datetime | None) -> dict[str, Any] | None:
    """The measure's bins from the build at `built_at` if its percentiles can be read from them:
    every span measured, the SLA cut where it is now."""
    if built_at is None:
        return None
    key = (built_at, measure)
    if key not in _CUTS:
        row = (
            ReportRollup.objects.filter(pk=1, built_at=built_at)
            .values_list(f"span_bins__{measure}", "span_bins__last_period", "span_bins__width")
            .first()
        )
        if len(_CUTS) > 30:
            _CUTS.clear()
        _CUTS[key] = (
            None
            if not row or not all(row)
            else {
                **row[0],
                "last_period": as_date(row[1]),
                "width": row[2],
            }
        )
    cut = _CUTS[key]
    if cut is None or cut["unmeasured"] or cut["sla"] != sla_hours:
        return None
    return cut


class _Upto:
    """A group's spans in the bins up to each bin, as a sum of signed terms: `RollupSpanPeriod` rows
    (fixed-width counts up to each bin, read where needed, never parsed whole) and the spans of a
    few edge days ({bin: count}, summed up to a bin by bisection)."""

    def __init__(self, width: int):
        self.width = width
        self.rows: list[tuple[int, str]] = []
        self.edges: list[tuple[int, list[int], list[int]]] = []
        self.seen: dict[int, int] = {}

    def add_row(self, sign: int, counts: str | None) -> None:
        if counts:
            self.rows.append((sign, counts))

    def add_edge(self, sign: int, per_bin: dict[int, int] | None) -> None:
        if per_bin:
            bins = sorted(per_bin)
            self.edges.append((sign, bins, list(itertools.accumulate(per_bin[b] for b in bins))))

    def __call__(self, b: int) -> int:
        """Spans in bins 0..b."""
        seen = self.seen
        if b in seen:
            return seen[b]
        if b < 0:
            return 0
        start = self.width * b
        end = start + self.width
        total = 0
        for sign, counts in self.rows:
            total += sign * int(counts[start:end])
        for sign, bins, running in self.edges:
            i = bisect.bisect_right(bins, b)
            if i:
                total += sign * running[i - 1]
        seen[b] = total
        return total


def distributions(
    cuts: dict[str, tuple[dict[str, Any], float | None]], group_kind: str | None, date_from: dt.date, date_to: dt.date
) -> dict[str, dict]:
    """`spans.slices` of the unfiltered spans starting in [date_from, date_to] of each measure
    in `cuts` (measure: (bins, SLA hours)), grouped by `group_kind` (a lead dimension) too, from
    the bins, in three queries whatever the measures: {measure: {(slice, key): (count, median,
    p90, share)}}, the rep slice keyed by user id (text, "" for none), the group slice by value."""
    if not cuts:
        return {}
    measures = list(cuts)
    last = next(iter(cuts.values()))[0]["last_period"]
    first_monday, last_monday = _monday(date_from), _monday(date_to)
    kinds = ["rep", *([group_kind] if group_kind else [])]
    sides = [_side(date_from - DAY), _side(date_to)]
    cumulative = _cumulative(
        measures,
        kinds,
        [period for period, _sign, _days in sides],
        first_monday - WEEK + HALF,
        last_monday + HALF,
        last,
    )
    edges = _edges(measures, group_kind, [days for _week, _sign, days in sides])
    planned = {}
    for measure, (cut, sla_hours) in cuts.items():
        groups = _groups(measure, cut["width"], kinds, cumulative, edges, sides, last, date_from, date_to)
        planned[measure] = _plan(measure, groups, cut, sla_hours)
    wanted = {target: count for plans, targets in planned.values() for target, count in targets.items()}
    fetched = _values(group_kind, wanted)
    return {measure: _finish(plans, fetched) for measure, (plans, _targets) in planned.items()}


def _groups(
    measure: str,
    width: int,
    kinds: list[str],
    cumulative: dict,
    edges: dict,
    sides: list,
    last: dt.date,
    date_from: dt.date,
    date_to: dt.date,
) -> list[tuple[str, str, _Upto, dt.date, dt.date]]:
    """Every group of a measure's slices (label, key, its spans up to each bin, first and last
    day): overall, by rep, by group, and by week."""

    def row(kind: str, value: str, period: dt.date) -> str | None:
        return cumulative.get((measure, kind, value, min(period, last)))

    def side(upto: _Upto, sign: int, kind: str, value: str, which: int) -> None:
        period, edge_sign, _days = sides[which]
        upto.add_row(sign, row(kind, value, period))
        upto.add_edge(sign * edge_sign, edges.get((measure, which, kind, value)))

    groups = []
    for kind in ["all", *kinds]:
        values = {v for (m, k, v, _p) in cumulative if m == measure and k == kind}
        values |= {v for (m, _s, k, v) in edges if m == measure and k == kind}
        for value in sorted(values):
            upto = _Upto(width)
            side(upto, -1, kind, value, 0)
            side(upto, 1, kind, value, 1)
            label = {"all": "total", "rep": "owner"}.get(kind, "group")
            groups.append((label, value, upto, date_from, date_to))
    # By week: a week's spans are those up to its Sunday (its Thursday's row) less those up to the
    # Sunday before; the range's first and last weeks end where the range does.
    first_monday, last_monday = _monday(date_from), _monday(date_to)
    week = first_monday
    while week <= last_monday:
        upto = _Upto(width)
        if week == first_monday:
            side(upto, -1, "all", "", 0)
        else:
            upto.add_row(-1, row("all", "", week - WEEK + HALF))
        if week == last_monday:
            side(upto, 1, "all", "", 1)
        else:
            upto.add_row(1, row("all", "", week + HALF))
        groups.append(("week", week.isoformat(), upto, max(week, date_from), min(week + 6 * DAY, date_to)))
        week += WEEK
    return groups


def _side(day: dt.date) -> tuple[dt.date, int, tuple[dt.date, dt.date] | None]:
    """The spans up to the end of `day` as (the half-week whose row to take, the sign of the edge
    days, the edge days): the nearest half-week end (a Wednesday or a Sunday) at or before the
    day, plus the days after it; or the nearest after, minus the days after the day, whichever
    counts fewer days (two at most)."""
    monday = _monday(day)
    ends = [(monday - DAY, monday - WEEK + HALF), (monday + 2 * DAY, monday), (monday + 6 * DAY, monday + HALF)]
    before = max((end for end in ends if end[0] <= day), key=lambda end: end[0])
    after = min((end for end in ends if end[0] >= day), key=lambda end: end[0])
    if (day - before[0]) <= (after[0] - day):
        return before[1], 1, (before[0] + DAY, day) if day > before[0] else None
    return after[1], -1, (day + DAY, after[0])


def _cumulative(
    measures: list[str], kinds: list[str], periods: list[dt.date], first: dt.date, last_needed: dt.date, last: dt.date
) -> dict[tuple, str]:
    """The `RollupSpanPeriod` rows a range needs: the half-weeks from `first` to `last_needed`
    (overall: its weeks), and those its start and end need (each group)."""
    table = quoted_table(RollupSpanPeriod)
    periods = sorted({min(p, last) for p in periods})
    in_measures = ", ".join("%s" for _ in measures)
    rows = fetch(
        f"SELECT measure, kind, value, period, counts FROM {table} WHERE measure IN ({in_measures})"
        f" AND kind = 'all' AND period >= %s AND period <= %s"
        f" UNION ALL SELECT measure, kind, value, period, counts FROM {table} WHERE measure IN ({in_measures})"
        f" AND kind IN ({', '.join('%s' for _ in kinds)}) AND period IN ({', '.join('%s' for _ in periods)})",
        [*measures, min(first, last), min(last_needed, last), *measures, *kinds, *periods],
    )
    return {(measure, kind, value, as_date(period)): counts for measure, kind, value, period, counts in rows}


def _edges(measures: list[str], group_kind: str | None, edges: list[tuple[dt.date, dt.date] | None]) -> dict:
    """{(measure, side, kind, value): {bin: count}}: the spans of each side's edge days
    (index-only ranges of `RollupSpan`), overall, by rep and by the grouping's dimension."""
    parts, params = [], []
    column = f", {group_kind}" if group_kind else ""
    in_measures = ", ".join("%s" for _ in measures)
    for side, edge in enumerate(edges):
        if edge is not None:
            parts.append(
                f"SELECT measure, {side} AS side, bin, owner_key{column} FROM {quoted_table(RollupSpan)}"
                f" WHERE measure IN ({in_measures}) AND day >= %s AND day <= %s"
            )
            params += [*measures, *edge]
    if not parts:
        return {}
    groupings = _groupings([group_kind] if group_kind else [])
    edge_rows = " UNION ALL ".join(parts)
    selects = " UNION ALL ".join(
        f"SELECT measure, side, {kind}, {value}, bin, COUNT(*) FROM ({edge_rows}) e GROUP BY measure, side{group}, bin"
        for kind, value, group in groupings
    )
    result: dict[tuple, dict[int, int]] = {}
    for measure, side, kind, value, bin_, n in fetch(selects, params * len(groupings)):
        result.setdefault((measure, side, kind, value), {})[bin_] = n
        if kind == "rep":  # every span has one rep or none: overall is the reps' sum
            overall = result.setdefault((measure, side, "all", ""), {})
            overall[bin_] = overall.get(bin_, 0) + n
    return result


def _ranks(n: int, p: float, pg: bool) -> tuple[int, float]:
    """The zero-based rank and the fraction towards the next one at which the backend's
    percentile interpolates: PostgreSQL's percentile_cont, or its SQLite equivalent
    (`sql.interpolated_percentile_sql`), float operation for float operation."""
    if pg:
        position = p * (n - 1)
        first = math.floor(position)
        return first, position - first
    position = 1 + p * (n - 1)
    first = int(position)
    return first - 1, position - first


def _locate(upto: _Upto, size: int, rank: int, lo: int = 0) -> int:
    """The bin holding a rank: the first (from `lo`) whose spans up to it outnumber the rank."""
    hi = size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if upto(mid) > rank:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _plan(measure: str, groups: list, cut: dict[str, Any], sla_hours: float | None) -> tuple[list, dict]:
    """Count, share within SLA and where the median's and p90's ranks are, per group: a value
    (a bin whose lengths are all equal) or a target to fetch, (measure, label, key, bin, first day,
    last day, rank in bin), with how many consecutive ranks from there."""
    size = len(cut["upper"]) + 1
    low, high = cut["low"], cut["high"]
    pg = on_postgresql()
    sla_bin = cut["upper"].index(float(sla_hours)) if sla_hours is not None else None
    wanted: dict[tuple, int] = {}
    plans = []
    for label, key, upto, first_day, last_day in groups:
        n = upto(size - 1)
        if n <= 0:
            continue
        picks, start = [], 0
        for p in (0.5, 0.9):
            rank, fraction = _ranks(n, p, pg)
            count = 2 if rank + 1 < n and fraction != 0 else 1
            b = start = _locate(upto, size, rank, start)  # the 90th's rank is not below the median's
            before, through = upto(b - 1), upto(b)
            ends: list[tuple[tuple | None, Any]] = []  # (target to fetch, None) or (None, value)
            for r in range(rank, rank + count):
                if r >= through:  # the next rank is in a later bin
                    b = _locate(upto, size, r, b)
                    before, through = upto(b - 1), upto(b)
                if low[b] == high[b]:
                    ends.append((None, low[b]))
                else:
                    ends.append(((measure, label, key, b, first_day, last_day, r - before), None))
            targets = [target for target, _value in ends if target is not None]
            if len(targets) == 2 and targets[0][:6] == targets[1][:6]:
                wanted[targets[0]] = max(wanted.get(targets[0], 1), 2)  # both ranks from one sort
            else:
                for target in targets:
                    wanted.setdefault(target, 1)
            picks.append((ends, fraction))
        share = None if sla_bin is None else upto(sla_bin) / n
        plans.append((label, key, n, picks, share))
    return plans, wanted


def _finish(plans: list, fetched: dict[tuple, float]) -> dict:
    """The groups' (count, median, p90, share), interpolating as the backend does."""
    result = {}
    for label, key, n, picks, share in plans:
        stats = []
        for ends, fraction in picks:
            values = [fetched[target] if value is None else value for target, value in ends]
            lo = values[0]
            stats.append(lo if len(values) == 1 else lo + fraction * (values[1] - lo))
        result[(label, key)] = (n, stats[0], stats[1], share)
    return result


def _values(group_kind: str | None, wanted: dict[tuple, int]) -> dict[tuple, float]:
    """The lengths at the wanted ranks (and the one after, where two are wanted) among the spans
    of a bin, group and days: one query, sorting each target's bin (an index range) only."""
    if not wanted:
        return {}
    span = quoted_table(RollupSpan)
    conditions = {
        "total": "",
        "week": "",
        "owner": " AND s.owner_key = t.k",
        "owner_none": " AND s.owner_key IS NULL",
        "group": f" AND s.{group_kind} = t.k" if group_kind else "",
    }
    targets = list(wanted)
    buckets: dict[str, list] = {}
    for i, target in enumerate(targets):
        measure, label, key, b, first_day, last_day, rank = target
        if label == "owner":
            kind, k = ("owner", int(key)) if key else ("owner_none", None)
        else:
            kind, k = label, key if label == "group" else None
        buckets.setdefault(kind, []).append((i, measure, b, first_day, last_day, rank, rank + wanted[target], k))
    # Numbers and dates written out (ours, typed here): a thousand parameters cost more to pass
    # than the query takes. A group's value, the lead's, goes as a parameter.
    date = "DATE '{}'" if on_postgresql() else "'{}'"
    ctes: list[str] = []
    selects: list[str] = []
    params: list[Any] = []
    for n, rows in enumerate(buckets.values()):
        values = []
        for i, measure, b, lo, hi, r, r_end, k in rows:
            if isinstance(k, str):
                key, params = "%s", [*params, k]
            else:
                key = "NULL" if k is None else str(int(k))
            assert measure.isalpha()
            values.append(
                f"({int(i)}, '{measure}', {int(b)}, {date.format(lo.isoformat())},"
                f" {date.format(hi.isoformat())},"
                f" {int(r)}, {int(r_end)}, {key})"
            )
        ctes.append(f"t{n} (i, m, b, lo, hi, r, r_end, k) AS (VALUES {', '.join(values)})")
    for n, kind in enumerate(buckets):
        where = f"s.measure = t.m AND s.bin = t.b AND s.day >= t.lo AND s.day <= t.hi{conditions[kind]}"
        if on_postgresql():
            # Each target's bin sorted on its own, only as far as its ranks (a top-N sort).
            selects.append(
                f"SELECT t.i, s.x FROM t{n} t CROSS JOIN LATERAL (SELECT x FROM {span} s WHERE {where}"
                f" ORDER BY x OFFSET t.r LIMIT t.r_end - t.r) s"
            )
        else:
            selects.append(
                f"SELECT i, x FROM (SELECT t.i, t.r, t.r_end, s.x, ROW_NUMBER() OVER (PARTITION BY t.i ORDER BY s.x)"
                f" AS rn FROM t{n} t JOIN {span} s ON {where}) q{n} WHERE rn > r AND rn <= r_end"
            )
    found: dict[int, list[float]] = {}
    for i, x in fetch(f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}", params):
        found.setdefault(i, []).append(x)
    result = {}
    for i, xs in found.items():
        *place, rank = targets[i]
        for step, x in enumerate(sorted(xs)):  # the values at consecutive ranks, in order
            result[(*place, rank + step)] = x
    return result
