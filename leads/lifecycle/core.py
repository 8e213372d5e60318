"""The one place that writes a lead's lifecycle state and its audit trail (SPEC section 2).

A lead's state is its stage, when it entered it, its owner and team, and its SLA clock
(`STATE_FIELDS`). Every change of it goes through a function of this module, and every
`StageTransition` row is written here:

- `apply` — one lead, inside the transaction that claimed it (`claim`): a compare-and-set
  UPDATE (``... WHERE id = %s AND stage = <the stage we checked>``, so that even without a row
  lock a lost race is detected, never silently double-applied), the audit row, and
  `stage_changed` (the webhook outbox row is written by its receiver in the same transaction).
- its batch forms, for the paths that move thousands of leads at once and whose callers have
  already claimed the rows: `write_promotions` (scoring's batch MQL promotion),
  `write_history` (imported history), `recycle_claimed` (the SLA sweep) and `set_deadlines`
  (a clock that moves on without a stage change). Each writes the same columns and audit rows
  that `apply` would, in a few set-based statements, and `send_batch_signal` tells the receivers
  once per batch.

The moves (`moves`, `promotion`, `history`, `expiry`) decide; this module only writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from leadflow.celery import enqueue_on_commit
from leads import permissions
from leads.bulk import concrete_field, id_set, insert_objects, insert_rows, rows_clause, update_rows
from leads.models import ActorType, Lead, SlaClock, Stage, StageTransition
from leads.signals import stage_changed, stage_changed_batch
from sla import clocks

from .errors import MOVE_NAMES, InvalidTransition, NotPermitted
from .table import ALLOWED_MOVES, PROMOTABLE_STAGES

# The report read model counts new history when the transaction that wrote it commits.
READ_MODEL_TASK = "reports.tasks.catch_up_reports"


def concrete_fields(model: type[Model], names: Sequence[str]) -> list[Field[Any, Any]]:
    """`model`'s columns by name, for the bulk writers (which take column fields, never relations)."""
    return [concrete_field(model, name) for name in names]


# A lead's lifecycle state: what a move changes and copies back onto the caller's instance.
STATE_FIELDS = (
    "stage",
    "stage_entered_at",
    "owner_id",
    "team_id",
    "sla_due_at",
    "sla_clock",
    "sla_warn_at",
    "sla_warned_at",
    "first_touch_at",
    "recycle_count",
)
# The StageTransition values of a batch row, in this order (the positional `__init__` of a model
# is four times cheaper than the keyword one, so rows travel as tuples).
TRANSITION_COLUMNS = (
    "lead_id",
    "from_stage",
    "to_stage",
    "at",
    "actor_type",
    "actor_id",
    "reason",
    "note",
    "fit_score",
    "behavior_score",
    "owner_id",
    "definition_version",
    "bant",
    "assignment",
)


@dataclass(frozen=True)
class Actor:
    """Who makes a move: a person in the browser, an integration's token, or the system."""

    type: str
    user: Any = None

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM)

    @classmethod
    def person(cls, user: Any) -> Actor:
        return cls(ActorType.USER, user)

    @classmethod
    def api(cls, user: Any) -> Actor:
        return cls(ActorType.API, user)

    @property
    def is_system(self) -> bool:
        return self.type == ActorType.SYSTEM

    @property
    def user_id(self) -> int | None:
        return None if self.is_system or self.user is None else int(self.user.pk)


SYSTEM = Actor.system()


@dataclass
class Change:
    """What a move does to one lead: its new stage (the same stage for a reassignment) and the
    audit row's reason, note, BANT record and assignment decision."""

    to_stage: str
    reason: str = ""
    note: str = ""
    bant: Mapping[str, Any] = field(default_factory=dict)
    # Lead columns to set besides stage/stage_entered_at/sla (owner, team, recycle_count...).
    updates: dict[str, Any] = field(default_factory=dict)
    assignment: dict[str, Any] = field(default_factory=dict)
    # A closed deal's amount (won or lost), recorded on the audit row.
    amount: Decimal | None = None


def claim(lead_id: int) -> Lead:
    """The lead's row, locked until the caller's transaction ends.

    Owner and team come along for the webhook payload and the API's answer, but only the
    lead's row is locked: a rep's or a team's row locked per move would queue their moves."""
    return Lead.objects.select_related("owner", "team").select_for_update(no_key=True, of=("self",)).get(pk=lead_id)


def check_table(lead: Lead, move: str, to_stage: str | None = None) -> None:
    targets = ALLOWED_MOVES[move].get(lead.stage)
    if not targets or (to_stage is not None and to_stage not in targets):
        raise InvalidTransition(lead=lead, move=move, current_stage=lead.stage)


def authorize(actor: Actor, lead: Lead, move: str) -> None:
    if actor.is_system:
        return
    if not permissions.can_move(actor.user, lead, move):
        raise NotPermitted(
            _("%(user)s may not %(move)s lead %(lead)s.")
            % {
                "user": getattr(actor.user, "username", None) or _("This user"),
                "move": str(MOVE_NAMES.get(move, move.replace("_", " "))),
                "lead": lead.pk,
            },
            move=move,
        )


def apply(
    lead: Lead,
    *,
    move: str,
    actor: Actor,
    change: Change,
    expected_stage: str,
    at: dt.datetime | None = None,
    definition_version: int | None = None,
) -> StageTransition:
    """Write one lead's change with a compare-and-set on the stage, then append the audit row.

    Must be called inside the transaction that claimed and checked `lead`. A change to another
    stage starts that stage's clock (from the active SLA policies) and sends `stage_changed`; a
    change within the stage (a reassignment) sets only `change.updates` and sends nothing.
    """
    now = at or timezone.now()
    stays = change.to_stage == lead.stage
    active_version, policies = clocks.active_terms(
        version=definition_version is None,
        policies=not stays and change.to_stage in (Stage.MQL, Stage.SAL),
    )
    values: dict[str, Any]
    if stays:
        values = {"updated_at": now, **change.updates}
    else:
        values = {
            **entered(change.to_stage, now, entering_deadline(lead, change.to_stage, now, policies)),
            **change.updates,
        }
        if change.to_stage == Stage.SAL and lead.stage == Stage.MQL:
            # Accepting is not a touch: a first touch made in MQL still counts in SAL.
            values["first_touch_at"] = lead.first_touch_at
    updated = Lead.objects.filter(pk=lead.pk, stage=expected_stage).update(**values)
    if updated != 1:
        current = Lead.objects.filter(pk=lead.pk).values_list("stage", flat=True).first()
        raise InvalidTransition(lead=lead, move=move, current_stage=current or expected_stage)
    from_stage = lead.stage
    for name, value in values.items():
        setattr(lead, name, value)
    for relation in ("owner", "team"):
        cached = lead._state.fields_cache.get(relation)
        if cached is not None and cached.pk != getattr(lead, f"{relation}_id"):
            del lead._state.fields_cache[relation]
    transition = StageTransition.objects.create(
        lead=lead,
        from_stage=from_stage,
        to_stage=change.to_stage,
        at=now,
        actor_type=actor.type,
        actor_id=actor.user_id,
        reason=change.reason,
        note=change.note,
        fit_score=lead.fit_score,
        behavior_score=lead.behavior_score,
        definition_version=definition_version if definition_version is not None else active_version,
        owner_id=lead.owner_id,
        bant=dict(change.bant),
        assignment=change.assignment,
        amount=change.amount,
    )
    enqueue_on_commit(READ_MODEL_TASK)
    if not stays:
        stage_changed.send(sender=StageTransition, transition=transition, lead=lead)
    return transition


def entering_deadline(lead: Lead, to_stage: str, now: dt.datetime, policies: Mapping[str, Any]) -> clocks.Deadline:
    """The clock `lead` runs on entering `to_stage` at `now`. From MQL to SAL the speed-to-lead
    clock keeps the deadline it had (it runs from MQL entry to the first touch; accepting is not
    a touch), or stays stopped if it was met or already breached."""
    if to_stage == Stage.SAL and lead.stage == Stage.MQL:
        if lead.first_touch_at is not None:
            return clocks.deadline(policies, to_stage, now, lead.first_touch_at)
        if lead.sla_clock == SlaClock.SAL_FIRST_TOUCH:
            running = (lead.sla_clock, lead.sla_due_at, lead.sla_warn_at)
            return clocks.deadline(policies, to_stage, now, None, carried=running)
        return clocks.deadline(policies, to_stage, now, None, skip=frozenset({SlaClock.SAL_FIRST_TOUCH}))
    return clocks.deadline(policies, to_stage, now, None)


def entered(stage: str, now: dt.datetime, deadline: clocks.Deadline) -> dict[str, Any]:
    """The lead columns of entering `stage` at `now`: its clock starts, no warning sent yet, no
    first touch in it."""
    clock, due, warn = deadline
    return {
        "stage": stage,
        "stage_entered_at": now,
        "sla_clock": clock,
        "sla_due_at": due,
        "sla_warn_at": warn,
        "sla_warned_at": None,
        "first_touch_at": None,
        "updated_at": timezone.now(),
    }


def copy_state(source: Lead, target: Lead) -> None:
    """Let the caller's instance see the new state without another query."""
    if source is target:
        return
    for name in STATE_FIELDS:
        setattr(target, name, getattr(source, name))
    for relation in ("owner", "team"):
        if relation in source._state.fields_cache:
            target._state.fields_cache[relation] = source._state.fields_cache[relation]
        else:
            target._state.fields_cache.pop(relation, None)


# --- Batch writes ----------------------------------------------------------------------------


def set_deadlines(deadlines: Mapping[int, clocks.Deadline], *, now: dt.datetime, **extra: Any) -> None:
    """Give each lead {id: (clock, due, warn)} that clock, its warning unsent; no stage change,
    no audit row (a first touch, a notify-only breach). `extra` columns are set on all of them.

    One UPDATE when all share a deadline (a closed clock), else one bulk update of the rows
    (a notify-only sweep batch moves thousands of leads, each to its own deadline)."""
    if not deadlines:
        return
    distinct = set(deadlines.values())
    if len(distinct) == 1:
        clock, due, warn = distinct.pop()
        Lead.objects.filter(pk__in=list(deadlines)).update(
            sla_clock=clock, sla_due_at=due, sla_warn_at=warn, sla_warned_at=None, updated_at=now, **extra
        )
        return
    names = ["sla_clock", "sla_due_at", "sla_warn_at", "sla_warned_at", "updated_at", *extra]
    update_rows(
        Lead,
        concrete_fields(Lead, names),
        [(lead_id, *deadline, None, now, *extra.values()) for lead_id, deadline in deadlines.items()],
    )


def set_first_touch(lead_id: int, *, at: dt.datetime, now: dt.datetime) -> None:
    """Record the lead's first touch in its open stage, its clock left as it runs (the
    speed-to-lead clock had already breached and moved on)."""
    Lead.objects.filter(pk=lead_id).update(first_touch_at=at, updated_at=now)


def write_promotions(
    rows: Sequence[Mapping[str, Any]],
    placements: Mapping[int, tuple[int | None, int | None]],
    *,
    actor: Actor,
    reasons: Mapping[int, str],
    assignments: Mapping[int, dict[str, Any]],
    note: str,
    now: dt.datetime,
    deadline: clocks.Deadline,
    definition_version: int | None,
) -> list[StageTransition]:
    """Move the claimed leads `rows` (id, stage, fit and behaviour scores) to MQL, each with its
    {id: (owner id, team id)} placement, and write their audit rows: what `apply` does per lead.

    Compare-and-set, as in `apply`: the rows are locked, so a short count means the lock did
    not hold (another writer without one) and nothing of the batch may stay."""
    updated = _promote_rows(placements, entered(Stage.MQL, now, deadline))
    if updated != len(placements):
        current = Lead.objects.filter(pk__in=list(placements)).exclude(stage__in=PROMOTABLE_STAGES)
        moved = current.values_list("pk", "stage").first() or (rows[0]["id"], "changed")
        raise InvalidTransition(lead=Lead(pk=moved[0]), move="promote_to_mql", current_stage=moved[1])
    written = [
        StageTransition(
            lead_id=row["id"],
            from_stage=row["stage"],
            to_stage=Stage.MQL,
            at=now,
            actor_type=actor.type,
            actor_id=actor.user_id,
            reason=reasons[row["id"]],
            note=note,
            fit_score=row["fit_score"],
            behavior_score=row["behavior_score"],
            definition_version=definition_version,
            owner_id=placements[row["id"]][0],
            bant={},
            assignment=assignments[row["id"]],
        )
        for row in rows
    ]
    insert_objects(StageTransition, written)
    enqueue_on_commit(READ_MODEL_TASK)
    send_batch_signal(StageTransition.objects.filter(pk__in=id_set([t.pk for t in written])), to_stages={Stage.MQL})
    return written


def _promote_rows(placements: Mapping[int, tuple[int | None, int | None]], common: dict[str, Any]) -> int:
    """Move the leads {id: (owner id, team id)} still in a promotable stage to MQL with the
    `common` column values; the number of rows moved. One `UPDATE ... FROM (VALUES ...)` on
    PostgreSQL (a batch spreads over every rep of several teams: one statement per owner cost
    more than the rest of the promotion), one UPDATE per owner elsewhere."""
    if connection.vendor != "postgresql":
        groups: dict[tuple[int | None, int | None], list[int]] = {}
        for lead_id, placement in placements.items():
            groups.setdefault(placement, []).append(lead_id)
        return sum(
            Lead.objects.filter(pk__in=ids, stage__in=PROMOTABLE_STAGES).update(
                owner_id=owner_id, team_id=team_id, **common
            )
            for (owner_id, team_id), ids in groups.items()
        )
    quote = connection.ops.quote_name
    fields = concrete_fields(Lead, list(common))
    sets = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    values = [f.get_db_prep_save(common[f.name], connection) for f in fields]
    ids, owners, teams = [], [], []
    for lead_id, (owner_id, team_id) in placements.items():
        ids.append(lead_id)
        owners.append(owner_id)
        teams.append(team_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Lead._meta.db_table} AS l SET {sets}, owner_id = v.owner, team_id = v.team "
            "FROM unnest(%s::bigint[], %s::integer[], %s::bigint[]) AS v(id, owner, team) "
            "WHERE l.id = v.id AND l.id = ANY(%s) AND l.stage = ANY(%s)",
            [*values, ids, owners, teams, ids, [str(stage) for stage in PROMOTABLE_STAGES]],
        )
        return int(cursor.rowcount)


def write_history(
    lead_fields: Sequence[str], leads: Sequence[Sequence[Any]], transitions: Sequence[Sequence[Any]]
) -> list[StageTransition]:
    """Write recorded history: each of `leads` is (id, then the values of `lead_fields`), each
    of `transitions` the values of `TRANSITION_COLUMNS`. The caller holds the leads' row locks.
    Returns the audit rows as instances, with their primary keys."""
    pks = insert_rows(StageTransition, concrete_fields(StageTransition, TRANSITION_COLUMNS), transitions)
    update_rows(Lead, concrete_fields(Lead, lead_fields), leads)
    enqueue_on_commit(READ_MODEL_TASK)
    # Columns history does not write (a deal's amount) read back as NULL (index -1 of the padded row).
    order = [
        TRANSITION_COLUMNS.index(f.attname) if f.attname in TRANSITION_COLUMNS else -1
        for f in StageTransition._meta.concrete_fields[1:]
    ]
    db = transaction.get_connection().alias
    return [
        StageTransition.from_db(db, None, (pk, *[(*row, None)[i] for i in order]))  # type: ignore[arg-type]  # None: all fields, as Django's own callers pass it
        for pk, row in zip(pks, transitions, strict=True)
    ]


def recycle_claimed(
    rows: Sequence[Mapping[str, Any]], *, now: dt.datetime, reason: str, note: str, version: int | None
) -> None:
    """Recycle the claimed leads `rows` (the SLA sweep's batch, each with its id and, on
    PostgreSQL, its row address `_tid`) with a system audit row each: owner cleared, clock
    closed, `recycle_count` up by one. Two statements for the whole batch: INSERT ... SELECT the
    audit rows from the leads as they are, then UPDATE the leads."""
    if not rows:
        return
    lead_table = Lead._meta.db_table
    where, params = rows_clause(rows)
    moment = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {StageTransition._meta.db_table} "
            "(lead_id, from_stage, to_stage, at, actor_type, actor_id, reason, note, fit_score, "
            "behavior_score, definition_version, owner_id, bant, assignment) "
            f"SELECT id, stage, %s, %s, %s, NULL, %s, %s, fit_score, behavior_score, %s, NULL, "
            f"'{{}}', '{{}}' FROM {lead_table} WHERE {where}",
            [Stage.RECYCLED, moment, ActorType.SYSTEM, reason, note, version, *params],
        )
        cursor.execute(
            f"UPDATE {lead_table} SET stage = %s, stage_entered_at = %s, owner_id = NULL, "
            "sla_clock = '', sla_due_at = NULL, sla_warn_at = NULL, sla_warned_at = NULL, "
            "first_touch_at = NULL, recycle_count = recycle_count + 1, updated_at = %s "
            # By address (or id) alone: the rows are locked since the claim, and a stage
            # or deadline condition here tempts the planner into the due index,
            # filtering the whole backlog against the list once per batch.
            f"WHERE {where}",
            [Stage.RECYCLED, moment, moment, *params],
        )
        updated = cursor.rowcount
    enqueue_on_commit(READ_MODEL_TASK)
    if updated != len(rows):
        # Rows were locked (or the SQLite write lock held): a mismatch means another
        # writer got in anyway. Roll the whole batch back; the next run retries it.
        raise InvalidTransition(lead=Lead(pk=rows[0]["id"]), move="recycle", current_stage="changed")


def send_batch_signal(transitions: QuerySet[StageTransition], *, to_stages: set[str]) -> None:
    """What `apply` sends per row, for a batch: the batch signal when anything listens to it
    (its receiver does the per-row receivers' work for the set), else `stage_changed` per row
    with the lead as it now is."""
    if stage_changed_batch.has_listeners():
        stage_changed_batch.send(sender=StageTransition, transitions=transitions, to_stages=to_stages)
    elif stage_changed.has_listeners():
        for transition in transitions.select_related("lead", "lead__owner", "lead__team").order_by("pk"):
            stage_changed.send(sender=StageTransition, transition=transition, lead=transition.lead)
