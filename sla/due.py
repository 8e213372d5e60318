"""The SLA sweep's set-based path: find the leads whose clock ran out, claim them, record the
breaches and have the lifecycle act on each per its policy.

The sweep may find a quarter of a million clocks run out at once (a long weekend, a team on
holiday). One Python call chain per lead would take minutes, so a batch is handled with a few
statements: lock the due rows (SKIP LOCKED on PostgreSQL, so a second worker takes other rows
and a second run finds nothing), INSERT ... SELECT the breach and audit rows, one UPDATE per
action. The same rules as the per-lead moves hold: system actor, reason `sla_expired`.

What a batch costs is mostly pages: every recycled row is a non-HOT update (a dozen index
entries) plus two inserts. Batches taken in deadline order scatter over the whole table (each
of 5,000 rows on its own heap page, each page written and WAL-logged in full after a
checkpoint), so the sweep first reads a window of due ids in deadline order and then claims
them batch by batch in the order they lie in the table (`due_sla_window`, then
`expire_sla_batch(lead_ids=...)`): the same rows, a fraction of the pages per batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from leads import lifecycle
from leads.bulk import id_set, rows_clause
from leads.models import CLOCKED_STAGES, ActorType, Lead, Stage, StageTransition, contact_label

from . import clocks
from .models import BreachAction, SlaBreach, SlaPolicy
from .signals import sla_breached


class ExpiredClock(NamedTuple):
    """One lead whose SLA clock ran out, as the sweep found it, and what was done about it.

    A named tuple, not a dataclass: a big sweep makes a quarter of a million of them. It keeps
    the name's parts: a digest shows a few dozen lines, so only those are formatted."""

    lead_id: int
    first_name: str
    last_name: str
    email: str
    stage: str
    clock: str
    due_at: dt.datetime
    owner_id: int | None
    team_id: int | None
    action: str
    new_owner_id: int | None = None

    @property
    def name(self) -> str:
        return contact_label(self.first_name, self.last_name, self.email)


_DUE_COLUMNS = (
    "id",
    "stage",
    "sla_clock",
    "sla_due_at",
    "owner_id",
    "team_id",
    "first_name",
    "last_name",
    "email",
    "stage_entered_at",
)


def due_rows(*, now: dt.datetime, limit: int, lock: bool, lead_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Leads due at `now` (same predicate as the partial index lead_sla_due_idx): the `limit`
    soonest, or those of `lead_ids` (a window from `due_sla_window`) that are still due.

    Under `lock`, rows another worker holds are skipped and the deadline is checked on the
    latest version of each row, so a lead accepted or swept since the window was read is left
    alone. On PostgreSQL each row carries `_tid`, its ctid: the row is locked until the batch
    commits, so the batch's statements find it again by address instead of by index.
    """
    if connection.vendor == "postgresql":
        return _due_rows_postgresql(now=now, limit=limit, lock=lock, lead_ids=lead_ids)
    qs = Lead.objects.filter(stage__in=CLOCKED_STAGES, sla_due_at__isnull=False, sla_due_at__lte=now)
    qs = qs.filter(pk__in=lead_ids).order_by("id") if lead_ids is not None else qs.order_by("sla_due_at", "id")
    if lock:
        qs = qs.select_for_update(skip_locked=True, no_key=True, of=("self",))
    return list(qs.values(*_DUE_COLUMNS)[:limit])


def _due_rows_postgresql(
    *, now: dt.datetime, limit: int, lock: bool, lead_ids: list[int] | None
) -> list[dict[str, Any]]:
    table = Lead._meta.db_table
    columns = ", ".join(_DUE_COLUMNS)
    if lead_ids is not None:
        # The id list drives the lookup (primary key probes). The deadline test is wrapped in
        # IS TRUE so the planner cannot AND the due index into it: that bitmap would read the
        # whole backlog, live and already swept, once per batch.
        sql = (
            f"SELECT {columns}, ctid::text FROM {table} WHERE id = ANY(%s::bigint[]) "
            "AND (stage IN (%s, %s) AND sla_due_at <= %s) IS TRUE"
        )
        # One array literal, not a list psycopg2 would adapt item by item (see _rows_clause).
        ids = "{" + ",".join(map(str, list(lead_ids)[:limit])) + "}"
        params: list[Any] = [ids, *CLOCKED_STAGES, now]
    else:
        sql = (
            f"SELECT {columns}, ctid::text FROM {table} WHERE stage IN (%s, %s) "
            "AND sla_due_at IS NOT NULL AND sla_due_at <= %s ORDER BY sla_due_at, id LIMIT %s"
        )
        params = [*CLOCKED_STAGES, now, limit]
    if lock:
        # NO KEY: the sweep changes no key, so inserts of events and touches that reference a
        # claimed lead (their foreign key check takes KEY SHARE) go on instead of queueing.
        sql += " FOR NO KEY UPDATE SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = []
        for *values, tid in cursor.fetchall():
            row = dict(zip(_DUE_COLUMNS, values, strict=False))
            row["_tid"] = tid
            rows.append(row)
    return rows


def due_sla_window(*, now: dt.datetime, limit: int) -> list[int]:
    """Ids of up to `limit` leads due at `now`, the most overdue first, listed in the order
    their rows lie in the table (PostgreSQL's ctid; id elsewhere), for `expire_sla_batch`.

    Read without locks: each batch claims its part of the window with SKIP LOCKED and checks
    the deadline again, so a window may be stale without anything acting twice."""
    table = Lead._meta.db_table
    physical = "ctid" if connection.vendor == "postgresql" else "id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, {physical} AS place FROM {table} "
            "WHERE stage IN (%s, %s) AND sla_due_at IS NOT NULL AND sla_due_at <= %s "
            "ORDER BY sla_due_at, id LIMIT %s) AS due ORDER BY place",
            [*CLOCKED_STAGES, connection.ops.adapt_datetimefield_value(now), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def due_sla_clocks(*, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Leads whose deadline has passed at `now`, soonest first, without locking (dry run)."""
    rows = due_rows(now=now, limit=limit, lock=False)
    for row in rows:
        row.pop("_tid", None)
    return rows


def expire_sla_batch(
    *,
    now: dt.datetime,
    policies: Mapping[str, SlaPolicy],
    limit: int,
    lead_ids: list[int] | None = None,
) -> list[ExpiredClock]:
    """Claim up to `limit` leads whose SLA deadline passed at `now` (the soonest due, or those
    of `lead_ids` still due and not locked by another worker) and act on each per the policy
    of its clock (``policies`` maps clock → active SlaPolicy):

    - recycle: the lead goes back to marketing (`recycled`, reason ``sla_expired``, owner cleared);
    - reassign: round-robin to another rep of the team; the clock restarts from `now`;
    - notify: the lead moves on to its next open clock (SAL first touch → qualify-or-drop), or
      its clock is closed, so the sweep does not find it again.

    Each acted-on clock gets one `SlaBreach` row (unique per lead, clock and deadline). Returns
    what was done, for the caller's notifications. An empty list means nothing is left due.
    """
    with transaction.atomic():
        rows = due_rows(now=now, limit=limit, lock=True, lead_ids=lead_ids)
        if not rows:
            return []
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Don't wait for the WAL flush: a batch lost in a crash is redone by the next
                # sweep (the claim is the lead's own state), and the flush is a third of a big
                # batch's time.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                # Check the breach and transition rows' foreign keys as each INSERT ends, not at
                # COMMIT: by then the UPDATE below has made a new version of every claimed lead
                # row, and each check's KEY SHARE lock would be one more write (and WAL record)
                # per row; before it, the claim's NO KEY UPDATE lock already covers the check.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        by_action: dict[str, list[dict[str, Any]]] = {}
        stale: list[int] = []
        for row in rows:
            policy = policies.get(row["sla_clock"])
            if policy is None:
                # A clock whose policy was switched off since the deadline was set: close it.
                stale.append(row["id"])
            else:
                row["policy"] = policy
                by_action.setdefault(policy.breach_action, []).append(row)

        acted = [row for row in rows if "policy" in row]
        _insert_breaches(acted, now=now, lead_table=Lead._meta.db_table)

        done: list[ExpiredClock] = []
        version = clocks.active_definition_version()
        recycled = by_action.get(BreachAction.RECYCLE, [])
        lifecycle.recycle_expired(recycled, now=now, version=version)
        if stale:
            lifecycle.close_clocks(stale, now=now)
        done.extend(_expired(row, BreachAction.RECYCLE) for row in recycled)

        for row in by_action.get(BreachAction.REASSIGN, []):
            new_owner_id = lifecycle.reassign_expired(row["id"], policy=row["policy"], now=now, version=version)
            done.append(_expired(row, BreachAction.REASSIGN, new_owner_id=new_owner_id))

        notify_rows = by_action.get(BreachAction.NOTIFY, [])
        if notify_rows:
            lifecycle.advance_clocks(notify_rows, now=now, policies=policies)
            done.extend(_expired(row, BreachAction.NOTIFY) for row in notify_rows)

        closed = set(stale)
        acted_ids = id_set([row["id"] for row in rows if row["id"] not in closed])
        written = StageTransition.objects.filter(
            lead_id__in=acted_ids, at=now, reason=lifecycle.SLA_EXPIRED, actor_type=ActorType.SYSTEM
        )
        to_stages: set[str] = {Stage.RECYCLED} if recycled else set()
        to_stages |= {row["stage"] for row in by_action.get(BreachAction.REASSIGN, [])}
        lifecycle.send_batch_signal(written, to_stages=to_stages)
        if sla_breached.has_listeners():
            sla_breached.send(
                sender=SlaBreach,
                breaches=SlaBreach.objects.filter(lead_id__in=acted_ids, detected_at=now),
            )
        if connection.vendor == "postgresql":
            # Back to Django's default, for a caller whose transaction this batch joined.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return done


def _expired(row: Mapping[str, Any], action: str, new_owner_id: int | None = None) -> ExpiredClock:
    # Positional, in field order: this runs once per breached lead.
    return ExpiredClock(
        row["id"],
        row["first_name"],
        row["last_name"],
        row["email"],
        row["stage"],
        row["sla_clock"],
        row["sla_due_at"],
        row["owner_id"],
        row["team_id"],
        action,
        new_owner_id,
    )


def _insert_breaches(rows: list[dict[str, Any]], *, now: dt.datetime, lead_table: str) -> None:
    """One SlaBreach per claimed row, each with the policy of its clock and that policy's
    version (the terms the breach was computed under), in one statement."""
    if not rows:
        return
    policies = {row["sla_clock"]: row["policy"] for row in rows}
    # The clock → policy table as a derived table both SQLite and PostgreSQL read.
    clocks = " UNION ALL ".join(
        ["SELECT %s AS clock, %s AS policy_id, %s AS action, %s AS policy_version"] * len(policies)
    )
    clock_params = [
        value
        for clock, policy in policies.items()
        for value in (clock, policy.pk, policy.breach_action, policy.version)
    ]
    where, params = rows_clause(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SlaBreach._meta.db_table} "
            "(lead_id, policy_id, clock, stage, owner_id, due_at, detected_at, recorded_at, action, policy_version) "
            "SELECT l.id, p.policy_id, l.sla_clock, l.stage, l.owner_id, l.sla_due_at, %s, %s, p.action, "
            "p.policy_version "
            f"FROM {lead_table} l JOIN ({clocks}) p ON p.clock = l.sla_clock "
            f"WHERE l.{where} ON CONFLICT (lead_id, clock, due_at) DO NOTHING",
            [
                connection.ops.adapt_datetimefield_value(now),
                connection.ops.adapt_datetimefield_value(timezone.now()),
                *clock_params,
                *params,
            ],
        )
