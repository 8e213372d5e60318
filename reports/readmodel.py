"""The report read model, kept up to date from the append-only stage history and the leads.

`catch_up()` consumes the `StageTransition` and `Lead` rows the read model has not counted yet,
in batches of `REPORTS_CATCH_UP_BATCH` rows, each in its own short transaction, and adds them
to the tables `reports.rollup` reads (`RollupDay`, `RollupRepeat`, `RollupExit`). Its cost is
proportional to the new rows: a batch touches only the new rows and the history of the leads
they belong to (for a lead's repeats and its MQL cohort flags), never the whole table or the
calendar span. The lifecycle core enqueues it when a transaction that wrote history commits
(`leadflow.celery.enqueue_on_commit`), and beat runs it every minute as a safety net.

Why it is safe twice or in two workers at once: each batch starts by updating the state row
(a row lock on PostgreSQL, the write lock on SQLite), so batches run one after the other, and
a batch counts only rows with no fact yet (`EntryFact`/`LeadFact`, keyed by the row's id).

Why a watermark plus facts rather than "id > watermark": ids are taken when a row is inserted
but become visible when its transaction commits, so a row with a lower id can commit after a
higher one was counted (two concurrent imports). A batch therefore takes the rows above the
watermark that have no fact, and the watermark advances only over ids that are counted, or
over gaps that stayed empty longer than `REPORTS_GAP_SECONDS` (an id a rolled-back transaction
took). Imported history has historical `at` values: a row counts on its own day, whenever it is
consumed.

Dimensions (source, team, rep, country) are the lead's when its row is consumed — within
seconds of the write — and stay frozen in the facts: a lead changing hands later does not move
its past counts. `rebuild()` (`manage.py rebuild_reports`) empties everything and consumes the
whole history again with the same batches, so it gives the same tables as the incremental path.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model
from django.db.models.functions import TruncDate
from django.utils import timezone

from leads.models import Lead, Stage, StageTransition

from .models import EntryFact, LeadFact, ReadModelState, RollupDay, RollupExit, RollupRepeat
from .rollup import COHORT, COUNTS, FUNNEL, KINDS, flag_sql, measure_sql, stages_sql
from .sql import quoted_table
from .stages import CHAIN, REJECTION_STAGES, rank

log = logging.getLogger(__name__)

DIMENSIONS = ("source", "team", "owner", "country")
SAL_OR_LATER = [s for s in CHAIN if rank(s) >= rank(Stage.SAL)]
SQL_OR_LATER = [s for s in CHAIN if rank(s) >= rank(Stage.SQL)]
# (kind, SQL of its value over a fact row): every count is kept overall and per one dimension.
KIND_VALUES = (("all", "''"), *((kind, kind) for kind in KINDS))
# Batches of one catch-up between two ANALYZEs of the facts (PostgreSQL).
ANALYZE_EVERY = 10


def batch_size() -> int:
    return int(getattr(settings, "REPORTS_CATCH_UP_BATCH", 1000))


def gap_seconds() -> float:
    return float(getattr(settings, "REPORTS_GAP_SECONDS", 600))


@dataclass
class Progress:
    """What one `catch_up()` did: rows counted, batches run, and whether it reached the end."""

    transitions: int = 0
    leads: int = 0
    batches: int = 0
    done: bool = False
    as_of: dt.datetime | None = None


# --- Running --------------------------------------------------------------------------------


def catch_up(*, max_batches: int | None = None, on_batch: Callable[[Progress], None] | None = None) -> Progress:
    """Count the rows not counted yet, a batch per transaction, until none are left (or
    `max_batches` ran). Returns what it did; `on_batch` is called after each batch."""
    ensure_state()
    progress = Progress()
    while max_batches is None or progress.batches < max_batches:
        with transaction.atomic():
            state = _claim()
            tz = timezone.get_current_timezone()
            if state.timezone != timezone.get_current_timezone_name():
                log.warning("report read model counts days in %s, not %s: rebuilding", state.timezone, tz)
                _reset(state)
            snapshot = timezone.now()  # every row committed before this is visible below
            transitions = _consume_transitions(state, tz)
            leads = _consume_leads(state, tz)
            _advance(state, snapshot)
            finished = len(transitions) < batch_size() and len(leads) < batch_size()
            if finished:
                state.as_of = snapshot
            state.save()
        progress.transitions += len(transitions)
        progress.leads += len(leads)
        progress.batches += 1
        if connection.vendor == "postgresql" and progress.batches % ANALYZE_EVERY == 1:
            # Fresh statistics while the facts grow fast (an import): planned on a table it
            # believes tiny, a batch's look-ups by lead would scan all of it, every batch.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {quoted_table(EntryFact)}, {quoted_table(RollupRepeat)}")
        progress.as_of = state.as_of
        if on_batch is not None:
            on_batch(progress)
        if finished:
            progress.done = True
            break
    return progress


def rebuild(*, on_batch: Callable[[Progress], None] | None = None) -> Progress:
    """Empty the read model and count the whole history again, in the same batches as the
    incremental path (`manage.py rebuild_reports`: a repair, or after a time-zone change)."""
    ensure_state()
    with transaction.atomic():
        _reset(_claim())
    return catch_up(on_batch=on_batch)


def ensure_state() -> ReadModelState:
    """The state row, made (with empty tables) on first use."""
    state = ReadModelState.objects.filter(pk=1).first()
    if state is not None:
        return state
    try:
        with transaction.atomic():
            state = ReadModelState.objects.create(pk=1, timezone=timezone.get_current_timezone_name())
            _empty_tables()
    except IntegrityError:  # another worker made it first
        state = ReadModelState.objects.get(pk=1)
    return state


def _claim() -> ReadModelState:
    """Lock the state row for this batch, writing first: on SQLite the write lock is taken now,
    so no other writer can commit between this batch's reads and its writes."""
    ReadModelState.objects.filter(pk=1).update(transitions_upto=F("transitions_upto"))
    return ReadModelState.objects.get(pk=1)


def _reset(state: ReadModelState) -> None:
    _empty_tables()
    state.transitions_upto = 0
    state.leads_upto = 0
    state.gaps = {}
    state.as_of = None
    state.timezone = timezone.get_current_timezone_name()
    state.save()


def _empty_tables() -> None:
    with connection.cursor() as cursor:
        for model in (RollupDay, RollupRepeat, RollupExit, EntryFact, LeadFact):
            cursor.execute(f"DELETE FROM {quoted_table(model)}")


# --- Consuming ------------------------------------------------------------------------------


def _pending(model: type[Model], upto: int, facts: type[Model], fact_key: str) -> list[int]:
    """The lowest ids above the watermark with no fact yet, a batch of them."""
    counted = facts.objects.filter(**{f"{fact_key}__gt": upto}).values(fact_key)  # type: ignore[attr-defined]
    rows = model.objects.filter(pk__gt=upto).exclude(pk__in=counted).order_by("pk")  # type: ignore[attr-defined]
    return [int(pk) for pk in rows.values_list("pk", flat=True)[: batch_size()]]


def _id_list(ids: Iterable[int]) -> str:
    """Ids inlined as SQL (integers only): a batch's list, without a bound-parameter limit."""
    return ", ".join(str(int(i)) for i in ids)


def _dims_select(prefix: str) -> str:
    return (
        f"COALESCE({prefix}source, ''), COALESCE(CAST({prefix}team AS text), ''),"
        f" COALESCE(CAST({prefix}owner AS text), ''), COALESCE({prefix}country, '')"
    )


def _consume_transitions(state: ReadModelState, tz: Any) -> list[int]:
    ids = _pending(StageTransition, state.transitions_upto, EntryFact, "transition_id")
    if not ids:
        return ids
    rows = (
        StageTransition.objects.filter(pk__in=ids)
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
            "f_day",
            "from_stage",
            "to_stage",
            "reason",
            "f_source",
            "f_team",
            "f_owner",
            "f_country",
        )
        .order_by()
    )
    select, params = rows.query.sql_with_params()
    facts = quoted_table(EntryFact)
    ids_sql = _id_list(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {facts} (transition_id, lead_id, at, day, from_stage, to_stage, reason,"
            " source, team, owner, country, m_sal, m_sql)"
            " WITH e (id, lead_id, at, day, from_stage, to_stage, reason, source, team, owner, country)"
            f" AS ({select}) SELECT id, lead_id, at, day, from_stage, to_stage, reason, {_dims_select('e.')},"
            " %s, %s FROM e",
            [*params, False, False],
        )
        # The range lets the planner take the primary key; the list picks the batch's rows in it.
        new = (
            f"transition_id >= {min(ids)} AND transition_id <= {max(ids)} AND transition_id IN ({ids_sql})"
            " AND from_stage <> to_stage"
        )
        _add_entries(cursor, new)
        _add_exits(cursor, new)
        cursor.execute(f"SELECT DISTINCT lead_id FROM {facts} WHERE transition_id IN ({ids_sql})")
        leads = _id_list(row[0] for row in cursor.fetchall())
        _update_cohort_flags(cursor, leads)
        _recount_repeats(cursor, leads)
    return ids


def _consume_leads(state: ReadModelState, tz: Any) -> list[int]:
    ids = _pending(Lead, state.leads_upto, LeadFact, "lead_id")
    if not ids:
        return ids
    rows = (
        Lead.objects.filter(pk__in=ids)
        .annotate(f_day=TruncDate("created_at", tzinfo=tz))
        .values_list("id", "f_day", "source", "team", "owner", "country")
        .order_by()
    )
    select, params = rows.query.sql_with_params()
    facts = quoted_table(LeadFact)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {facts} (lead_id, day, source, team, owner, country)"
            f" WITH e (id, day, source, team, owner, country) AS ({select})"
            f" SELECT id, day, {_dims_select('e.')} FROM e",
            params,
        )
        counts = ", ".join("COUNT(*)" if c == "created" else "0" for c in COUNTS)
        _upsert_days(
            cursor,
            [
                f"SELECT day, source, '{kind}', {value}, {counts} FROM n"
                f" GROUP BY day, source{'' if kind == 'all' else ', ' + value}"
                for kind, value in KIND_VALUES
            ],
            f"WITH n AS (SELECT * FROM {facts} WHERE lead_id >= {min(ids)} AND lead_id <= {max(ids)}"
            f" AND lead_id IN ({_id_list(ids)}))",
        )
    return ids


# --- Adding up ------------------------------------------------------------------------------


def _day_upsert() -> str:
    table = quoted_table(RollupDay)
    sums = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTS)
    return f" ON CONFLICT (kind, value, day, source) DO UPDATE SET {sums}"


def _upsert_days(cursor: Any, selects: Sequence[str], with_: str = "") -> None:
    """Add the rows of `selects` (day, source, kind, value, then `COUNTS`) to `RollupDay`;
    `with_`: a WITH clause they read from."""
    # "WHERE 1 = 1": SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT.
    cursor.execute(
        f"INSERT INTO {quoted_table(RollupDay)} (day, source, kind, value, {', '.join(COUNTS)}) {with_}"
        f" SELECT * FROM ({' UNION ALL '.join(selects)}) u WHERE 1 = 1{_day_upsert()}"
    )


def _add_entries(cursor: Any, new: str) -> None:
    """The new stage entries' counts per day: every entry, per funnel measure, MQL entries."""
    facts = quoted_table(EntryFact)
    counts = ", ".join(
        [
            "0",
            "COUNT(*)",
            *(f"SUM({flag_sql(measure_sql(m))})" for m in FUNNEL),
            f"SUM({flag_sql(measure_sql(COHORT))})",
            "0",
            "0",
        ]
    )
    _upsert_days(
        cursor,
        [
            f"SELECT day, source, '{kind}', {value}, {counts} FROM n"
            f" GROUP BY day, source{'' if kind == 'all' else ', ' + value}"
            for kind, value in KIND_VALUES
        ],
        f"WITH n AS (SELECT * FROM {facts} WHERE {new})",  # the new rows, read once
    )


def _add_exits(cursor: Any, new: str) -> None:
    facts = quoted_table(EntryFact)
    table = quoted_table(RollupExit)
    exits = f"{new} AND to_stage IN ({stages_sql(REJECTION_STAGES)})"
    selects = [
        f"SELECT day, source, '{kind}', {value}, reason, from_stage, to_stage, COUNT(*) FROM x"
        f" GROUP BY day, source{'' if kind == 'all' else ', ' + value}, reason, from_stage, to_stage"
        for kind, value in KIND_VALUES
    ]
    cursor.execute(
        f"INSERT INTO {table} (day, source, kind, value, reason, from_stage, to_stage, n)"
        f" WITH x AS (SELECT * FROM {facts} WHERE {exits})"
        f" SELECT * FROM ({' UNION ALL '.join(selects)}) u WHERE 1 = 1"
        " ON CONFLICT (kind, value, day, source, reason, from_stage, to_stage)"
        f" DO UPDATE SET n = {table}.n + excluded.n",
    )


def _update_cohort_flags(cursor: Any, leads: str) -> None:
    """Recompute, for the MQL entries of `leads`, whether the lead reached SAL/SQL at or after
    each (a later row can turn it on, an imported earlier one too), and add the changes to the
    days the entries count on."""
    facts = quoted_table(EntryFact)
    cursor.execute(
        f"SELECT f.transition_id, f.day, f.source, f.team, f.owner, f.country, f.m_sal, f.m_sql,"
        f" {flag_sql('l.sal_at >= f.at')}, {flag_sql('l.sql_at >= f.at')}"
        f" FROM {facts} f JOIN (SELECT lead_id,"
        f" MAX(CASE WHEN to_stage IN ({stages_sql(SAL_OR_LATER)}) THEN at END) AS sal_at,"
        f" MAX(CASE WHEN to_stage IN ({stages_sql(SQL_OR_LATER)}) THEN at END) AS sql_at"
        f" FROM {facts} WHERE lead_id IN ({leads}) AND from_stage <> to_stage"
        f" AND to_stage IN ({stages_sql(SAL_OR_LATER)}) GROUP BY lead_id) l ON l.lead_id = f.lead_id"
        f" WHERE f.lead_id IN ({leads}) AND f.to_stage = %s AND f.from_stage <> f.to_stage",
        [Stage.MQL],
    )
    changed: dict[tuple[bool, bool], list[int]] = defaultdict(list)
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for pk, day, source, team, owner, country, old_sal, old_sql, new_sal, new_sql in cursor.fetchall():
        d_sal, d_sql = int(new_sal) - int(old_sal), int(new_sql) - int(old_sql)
        if not d_sal and not d_sql:
            continue
        changed[(bool(new_sal), bool(new_sql))].append(pk)
        for kind, value in (("all", ""), ("team", team), ("owner", owner), ("country", country)):
            delta = deltas[(day, source, kind, value)]
            delta[0] += d_sal
            delta[1] += d_sql
    for (m_sal, m_sql), pks in changed.items():
        EntryFact.objects.filter(transition_id__in=pks).update(m_sal=m_sal, m_sql=m_sql)
    if deltas:
        values = ", ".join("%s" if c in ("mql_entries_sal", "mql_entries_sql") else "0" for c in COUNTS)
        rows = [(*key, d_sal, d_sql) for key, (d_sal, d_sql) in deltas.items()]
        # Multi-row statements: one round trip per 1,000 rows, not one per row.
        for first in range(0, len(rows), 1000):
            chunk = rows[first : first + 1000]
            cursor.execute(
                f"INSERT INTO {quoted_table(RollupDay)} (day, source, kind, value, {', '.join(COUNTS)})"
                f" VALUES {', '.join(f'(%s, %s, %s, %s, {values})' for _ in chunk)}{_day_upsert()}",
                [v for row in chunk for v in row],
            )


def _recount_repeats(cursor: Any, leads: str) -> None:
    """A lead's repeats (entries that had an earlier one of the same measure) depend on all its
    entries: delete and recompute them for the leads of the batch."""
    facts = quoted_table(EntryFact)
    table = quoted_table(RollupRepeat)
    cursor.execute(f"DELETE FROM {table} WHERE lead_id IN ({leads})")
    selects = [
        f"SELECT '{measure}' AS measure, lead_id, at, transition_id, day, m_sal, m_sql, source, team, owner, country"
        f" FROM f WHERE {measure_sql(measure)}"
        for measure in (*FUNNEL, COHORT)
    ]
    # The leads' entries read once (by the lead index), then split per measure.
    cursor.execute(
        f"INSERT INTO {table} (measure, day, prev_day, next_day, reached_sal, reached_sql,"
        " source, team, owner, country, lead_id)"
        f" WITH f AS (SELECT * FROM {facts} WHERE lead_id IN ({leads}) AND from_stage <> to_stage)"
        " SELECT measure, day, prev_day, next_day, m_sal, m_sql, source, team, owner, country, lead_id FROM ("
        " SELECT measure, lead_id, day, m_sal, m_sql, source, team, owner, country,"
        " LAG(day) OVER (PARTITION BY measure, lead_id ORDER BY at, transition_id) AS prev_day,"
        " LEAD(day) OVER (PARTITION BY measure, lead_id ORDER BY at, transition_id) AS next_day"
        f" FROM ({' UNION ALL '.join(selects)}) m) r WHERE prev_day IS NOT NULL"
    )


# --- The watermarks -------------------------------------------------------------------------


def _advance(state: ReadModelState, now: dt.datetime) -> None:
    gaps = dict(state.gaps or {})
    state.transitions_upto, gaps["transitions"] = _walk(
        state.transitions_upto,
        EntryFact.objects.filter(transition_id__gt=state.transitions_upto).order_by("transition_id"),
        "transition_id",
        gaps.get("transitions", {}),
        now,
        lambda lo, hi: StageTransition.objects.filter(pk__gte=lo, pk__lte=hi).exists(),
    )
    state.leads_upto, gaps["leads"] = _walk(
        state.leads_upto,
        LeadFact.objects.filter(lead_id__gt=state.leads_upto).order_by("lead_id"),
        "lead_id",
        gaps.get("leads", {}),
        now,
        lambda lo, hi: Lead.objects.filter(pk__gte=lo, pk__lte=hi).exists(),
    )
    state.gaps = gaps


def _walk(
    upto: int,
    facts: Any,
    key: str,
    gaps: dict[str, str],
    now: dt.datetime,
    committed: Callable[[int, int], bool],
) -> tuple[int, dict[str, str]]:
    """The new watermark: up over the counted ids, and over a gap first seen more than
    `REPORTS_GAP_SECONDS` ago that is still empty; the gaps still open, with when first seen."""
    ids = list(facts.values_list(key, flat=True)[: batch_size() * 20])
    # Never advanced yet: the ids below the first counted one are not a gap (a sequence that
    # does not start at 1, the history of a database the tests share).
    expected = upto + 1 if upto or not ids else ids[0]
    still_open: dict[str, str] = {}
    stopped = False
    for pk in ids:
        if pk > expected:
            seen = gaps.get(str(expected))
            expired = seen is not None and (now - dt.datetime.fromisoformat(seen)).total_seconds() >= gap_seconds()
            if stopped or not expired or committed(expected, pk - 1):
                stopped = True
                still_open[str(expected)] = seen or now.isoformat()
        if not stopped:
            upto = pk
        expected = pk + 1
    return upto, still_open
