"""Every change of a lead's stage, and nothing else, happens here (SPEC section 2).

One table of allowed moves, one function per move. Each function:

1. opens one transaction and locks the lead row (``select_for_update``; on SQLite the
   IMMEDIATE transaction mode serialises writers instead),
2. checks the move against the table (and the actor's right to make it),
3. updates the denormalised lead columns with a compare-and-set
   (``UPDATE ... WHERE id = %s AND stage = <the stage we checked>``) so that even without a
   row lock a lost race is detected, never silently double-applied,
4. appends a ``StageTransition`` audit row and sends ``stage_changed`` (webhook outbox rows are
   written by its receivers inside the same transaction).

Views, API views, admin actions and Celery tasks call these functions; none assigns
``lead.stage`` itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from . import permissions
from .bulk import insert_objects
from .assignment import assign_round_robin, assign_round_robin_batch
from .models import (
    CLOCKED_STAGES,
    ActorType,
    Lead,
    SlaClock,
    Stage,
    StageTransition,
    Touch,
    TouchKind,
    contact_label,
)
from .signals import stage_changed, stage_changed_batch

# --- The lifecycle table -------------------------------------------------------------------

ALLOWED_MOVES: dict[str, dict[str, frozenset[str]]] = {
    # move name: {from stage: allowed target stages}
    "promote_to_mql": {Stage.LEAD: frozenset({Stage.MQL}), Stage.RECYCLED: frozenset({Stage.MQL})},
    "accept": {Stage.MQL: frozenset({Stage.SAL})},
    "recycle": {Stage.MQL: frozenset({Stage.RECYCLED}), Stage.SAL: frozenset({Stage.RECYCLED})},
    "disqualify": {
        Stage.MQL: frozenset({Stage.DISQUALIFIED}),
        Stage.SAL: frozenset({Stage.DISQUALIFIED}),
    },
    "qualify": {Stage.SAL: frozenset({Stage.SQL})},
    "close": {Stage.SQL: frozenset({Stage.WON, Stage.LOST})},
}
# The rep's "reject" is recycle or disqualify by reason; it is offered only on an MQL.
REJECT_FROM = frozenset({Stage.MQL})

RECYCLE_REASONS = frozenset(
    {"unable_to_reach", "no_budget", "no_authority", "no_need", "bad_timing", "other"}
)
SYSTEM_RECYCLE_REASONS = frozenset({"sla_expired"})
DISQUALIFY_REASONS = frozenset({"inaccurate_data", "not_a_fit", "duplicate", "competitor", "spam"})
REJECT_REASONS = RECYCLE_REASONS | DISQUALIFY_REASONS
PROMOTION_REASONS = frozenset({"score", "hand_raiser", "manual", "import"})
BANT_KEYS = ("budget", "authority", "need", "timeline")
DEFAULT_BANT_REQUIRED = 4
CLOSE_OUTCOMES = frozenset({Stage.WON, Stage.LOST})


def allowed_moves(stage: str) -> list[str]:
    """Names of the moves the table allows from `stage` (override is always possible)."""
    moves = [name for name, table in ALLOWED_MOVES.items() if stage in table]
    if stage in REJECT_FROM:
        moves.append("reject")
    return sorted(moves)


def allowed_targets(stage: str) -> list[str]:
    return sorted({to for table in ALLOWED_MOVES.values() for to in table.get(stage, ())})


# --- Errors --------------------------------------------------------------------------------


class TransitionError(Exception):
    """Base of the lifecycle's domain errors; `code` is the API's stable error code."""

    code = "transition_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidTransition(TransitionError):
    """The move is not allowed from the lead's current stage."""

    code = "invalid_transition"

    def __init__(self, *, lead: Lead, move: str, current_stage: str) -> None:
        moves = allowed_moves(current_stage)
        super().__init__(
            f"Cannot {move.replace('_', ' ')} lead {lead.pk}: it is in stage "
            f"'{current_stage}'. Allowed from '{current_stage}': "
            f"{', '.join(moves) if moves else 'no moves (final stage)'}.",
            current_stage=current_stage,
            allowed_moves=moves,
            allowed_stages=allowed_targets(current_stage),
        )
        self.current_stage = current_stage
        self.allowed_moves = moves


class InvalidReason(TransitionError):
    code = "invalid_reason"


class BantIncomplete(TransitionError):
    code = "bant_required"


class TouchesRequired(TransitionError):
    code = "touches_required"


class NoteRequired(TransitionError):
    code = "note_required"


class NotPermitted(TransitionError):
    """The actor may not make this move on this lead (SPEC section 1)."""

    code = "permission_denied"


# --- Actors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who makes a move: a person in the browser, an integration's token, or the system."""

    type: str
    user: Any = None

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM)

    @classmethod
    def person(cls, user) -> Actor:
        return cls(ActorType.USER, user)

    @classmethod
    def api(cls, user) -> Actor:
        return cls(ActorType.API, user)

    @property
    def is_system(self) -> bool:
        return self.type == ActorType.SYSTEM


SYSTEM = Actor.system()


# --- Shared mechanics ------------------------------------------------------------------------


@dataclass
class _Change:
    to_stage: str
    reason: str = ""
    note: str = ""
    bant: Mapping[str, Any] = field(default_factory=dict)
    # Lead columns to set besides stage/stage_entered_at/sla (owner, team, recycle_count...).
    updates: dict[str, Any] = field(default_factory=dict)
    assignment: dict[str, Any] = field(default_factory=dict)


def _authorize(actor: Actor, lead: Lead, move: str) -> None:
    if actor.is_system:
        return
    if not permissions.can_move(actor.user, lead, move):
        raise NotPermitted(
            f"{getattr(actor.user, 'username', 'This user')} may not {move.replace('_', ' ')} "
            f"lead {lead.pk}.",
            move=move,
        )


def _lock(lead_id: int) -> Lead:
    # Owner and team come along for the webhook payload and the API's answer, but only the
    # lead's row is locked: a rep's or a team's row locked per move would queue their moves.
    return (
        Lead.objects.select_related("owner", "team")
        .select_for_update(no_key=True, of=("self",))
        .get(pk=lead_id)
    )


def _check_table(lead: Lead, move: str, to_stage: str | None = None) -> None:
    table = ALLOWED_MOVES[move]
    targets = table.get(lead.stage)
    if not targets or (to_stage is not None and to_stage not in targets):
        raise InvalidTransition(lead=lead, move=move, current_stage=lead.stage)


def active_definition_version() -> int | None:
    return _active_rules(policies=False)[0]


def _active_sla_policies() -> dict[str, Any]:
    """The active SLA policies by clock, with their calendars."""
    return dict(_active_rules(version=False)[1])


# Per process and database: the row versions of the active SLA policies and their calendars
# last read, and the policies built from those rows.
_POLICIES_SEEN: dict[Any, tuple[Any, Any]] = {}


def _active_rules(
    *, version: bool = True, policies: bool = True
) -> tuple[int | None, Mapping[str, Any]]:
    """The active definition's version and the active SLA policies by clock.

    On PostgreSQL this is one query returning the version and the row versions (``xmin``,
    ``ctid``) of the active policies and their calendars; the policies are rebuilt only when
    those changed. Any edit, by any process, writes a new row version, so it takes effect on the
    next move without an invalidation to remember. Elsewhere (SQLite: no round trips) the
    asked-for parts are read as they are.
    """
    from django.db import connection
    from scoring.models import DefinitionState, QualifiedLeadDefinition
    from sla.models import BusinessCalendar, SlaPolicy

    from .row_versions import unless_changed

    if connection.vendor != "postgresql":
        active_version = (
            QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE)
            .values_list("version", flat=True)
            .first()
            if version
            else None
        )
        return active_version, (_read_sla_policies() if policies else {})
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT d.version FROM {quote(QualifiedLeadDefinition._meta.db_table)} d"
            " WHERE d.state = %s ORDER BY d.version DESC LIMIT 1),"
            " (SELECT string_agg(concat_ws(':', p.id, p.xmin, p.ctid, c.id, c.xmin, c.ctid),"
            " ',' ORDER BY p.id)"
            f" FROM {quote(SlaPolicy._meta.db_table)} p"
            f" JOIN {quote(BusinessCalendar._meta.db_table)} c ON c.id = p.calendar_id"
            " WHERE p.active)",
            [DefinitionState.ACTIVE],
        )
        active_version, row_versions = cursor.fetchone()
    return active_version, unless_changed(_POLICIES_SEEN, row_versions, _read_sla_policies)


def _read_sla_policies() -> dict[str, Any]:
    from sla.models import SlaPolicy

    return {
        policy.clock: policy
        for policy in SlaPolicy.objects.filter(active=True).select_related("calendar")
    }


def _deadline_from(
    policies: Mapping[str, Any],
    stage: str,
    entered_at: dt.datetime | None,
    first_touch_at: dt.datetime | None,
) -> tuple[str, dt.datetime | None, dt.datetime | None]:
    """The nearest open clock for a lead in `stage`, its deadline and its warning point, from
    the given policies. Every clock runs from the moment the lead entered the stage."""
    if stage == Stage.MQL:
        wanted = [SlaClock.MQL_DECISION]
    elif stage == Stage.SAL:
        wanted = [SlaClock.SAL_QUALIFY]
        if first_touch_at is None:
            wanted.append(SlaClock.SAL_FIRST_TOUCH)
    else:
        return "", None, None
    if entered_at is None:
        return "", None, None
    candidates = [
        (policies[clock].due_from(entered_at), clock) for clock in wanted if clock in policies
    ]
    if not candidates:
        return "", None, None
    due, clock = min(candidates)
    return clock, due, policies[clock].warn_from(entered_at)


def _sla_deadline(
    stage: str, entered_at: dt.datetime, first_touch_at: dt.datetime | None
) -> tuple[str, dt.datetime | None, dt.datetime | None]:
    """`_deadline_from` the active policies."""
    if stage not in (Stage.MQL, Stage.SAL):
        return "", None, None
    return _deadline_from(_active_rules(version=False)[1], stage, entered_at, first_touch_at)


def _apply(
    lead: Lead,
    *,
    move: str,
    actor: Actor,
    change: _Change,
    expected_stage: str,
    at: dt.datetime | None = None,
    definition_version: int | None = None,
) -> StageTransition:
    """Write the change with a compare-and-set on the stage, then append the audit row.

    Must be called inside the transaction that locked and checked `lead`.
    """
    now = at or timezone.now()
    first_touch_at = None if change.to_stage != lead.stage else lead.first_touch_at
    active_version, policies = _active_rules(
        version=definition_version is None, policies=change.to_stage in (Stage.MQL, Stage.SAL)
    )
    clock, due, warn = _deadline_from(policies, change.to_stage, now, first_touch_at)
    values: dict[str, Any] = {
        "stage": change.to_stage,
        "stage_entered_at": now,
        "sla_clock": clock,
        "sla_due_at": due,
        "sla_warn_at": warn,
        "sla_warned_at": None,
        "first_touch_at": first_touch_at,
        "updated_at": timezone.now(),
        **change.updates,
    }
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
        actor=actor.user if not actor.is_system else None,
        reason=change.reason,
        note=change.note,
        fit_score=lead.fit_score,
        behavior_score=lead.behavior_score,
        definition_version=definition_version if definition_version is not None else active_version,
        owner_id=lead.owner_id,
        bant=dict(change.bant),
        assignment=change.assignment,
    )
    stage_changed.send(sender=StageTransition, transition=transition, lead=lead)
    return transition


# --- The moves -----------------------------------------------------------------------------


def _check_promotion(*, actor: Actor, reason: str, note: str) -> None:
    if reason not in PROMOTION_REASONS:
        raise InvalidReason(f"Unknown promotion reason '{reason}'.", field="reason")
    if not actor.is_system and reason == "manual" and not note.strip():
        raise NoteRequired("A manual MQL promotion needs a note saying why.", field="note")


def promote_to_mql(
    lead: Lead,
    *,
    actor: Actor,
    reason: str = "score",
    note: str = "",
    definition_version: int | None = None,
    owner=None,
    at: dt.datetime | None = None,
) -> StageTransition:
    """lead/recycled → mql, assigning an owner round-robin in the territory's team.

    The scoring services decide *whether* a lead qualifies (thresholds, knock-outs, cool-down);
    this function only records it. A manual promotion by a marketer needs a note.
    """
    _check_promotion(actor=actor, reason=reason, note=note)
    with transaction.atomic():
        locked = _lock(lead.pk)
        _authorize(actor, locked, "promote_to_mql")
        _check_table(locked, "promote_to_mql")
        if owner is not None:
            team, chosen, decision = locked.team, owner, {"method": "explicit", "owner": owner.username}
        else:
            team, chosen, decision = assign_round_robin(locked)
        change = _Change(
            to_stage=Stage.MQL,
            reason=reason,
            note=note,
            updates={"owner_id": getattr(chosen, "pk", None), "team_id": getattr(team, "pk", None)},
            assignment=decision,
        )
        locked.owner, locked.team = chosen, team
        transition = _apply(
            locked,
            move="promote_to_mql",
            actor=actor,
            change=change,
            expected_stage=locked.stage,
            at=at,
            definition_version=definition_version,
        )
    _copy_state(locked, lead)
    return transition


def accept(lead: Lead, *, actor: Actor, note: str = "") -> StageTransition:
    """mql → sal. A rep of the owning team accepting an unassigned MQL becomes its owner."""
    with transaction.atomic():
        locked = _lock(lead.pk)
        _check_table(locked, "accept")
        _authorize(actor, locked, "accept")
        updates: dict[str, Any] = {}
        if locked.owner_id is None and actor.user is not None and permissions.is_rep(actor.user):
            updates["owner_id"] = actor.user.pk
            locked.owner = actor.user
        transition = _apply(
            locked,
            move="accept",
            actor=actor,
            change=_Change(to_stage=Stage.SAL, note=note, updates=updates),
            expected_stage=Stage.MQL,
        )
    _copy_state(locked, lead)
    return transition


def reject(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """A rep's rejection of an MQL: recycled or disqualified, depending on the reason."""
    if reason in DISQUALIFY_REASONS:
        return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="disqualify", reject=True)
    if reason in RECYCLE_REASONS:
        return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="recycle", reject=True)
    raise InvalidReason(
        f"Unknown rejection reason '{reason}'. Choose one of: {', '.join(sorted(REJECT_REASONS))}.",
        field="reason",
        choices=sorted(REJECT_REASONS),
    )


def recycle(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """mql/sal → recycled: back to marketing's pool, history kept, owner cleared."""
    allowed = RECYCLE_REASONS | (SYSTEM_RECYCLE_REASONS if actor.is_system else frozenset())
    if reason not in allowed:
        raise InvalidReason(
            f"Unknown recycle reason '{reason}'. Choose one of: {', '.join(sorted(allowed))}.",
            field="reason",
            choices=sorted(allowed),
        )
    return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="recycle")


def disqualify(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """mql/sal → disqualified: not a lead for us (bad data, not a fit, duplicate...)."""
    if reason not in DISQUALIFY_REASONS:
        raise InvalidReason(
            f"Unknown disqualification reason '{reason}'. Choose one of: "
            f"{', '.join(sorted(DISQUALIFY_REASONS))}.",
            field="reason",
            choices=sorted(DISQUALIFY_REASONS),
        )
    return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="disqualify")


def _recycle_or_disqualify(
    lead: Lead, *, actor: Actor, reason: str, note: str, move: str, reject: bool = False
) -> StageTransition:
    to_stage = Stage.RECYCLED if move == "recycle" else Stage.DISQUALIFIED
    with transaction.atomic():
        locked = _lock(lead.pk)
        if reject and locked.stage not in REJECT_FROM:
            raise InvalidTransition(lead=locked, move="reject", current_stage=locked.stage)
        _check_table(locked, move, to_stage)
        _authorize(actor, locked, "reject" if reject else move)
        if reason == "unable_to_reach" and locked.stage == Stage.SAL:
            missing = missing_touches(locked)
            if missing:
                raise TouchesRequired(
                    "Cannot recycle as unable to reach yet: " + "; ".join(missing) + ".",
                    field="reason",
                    missing=missing,
                )
        updates: dict[str, Any] = {}
        if to_stage == Stage.RECYCLED:
            updates = {"owner_id": None, "recycle_count": locked.recycle_count + 1}
        transition = _apply(
            locked,
            move=move,
            actor=actor,
            change=_Change(to_stage=to_stage, reason=reason, note=note, updates=updates),
            expected_stage=locked.stage,
        )
    _copy_state(locked, lead)
    return transition


def qualify(
    lead: Lead, *, actor: Actor, bant: Mapping[str, Any], note: str = ""
) -> StageTransition:
    """sal → sql with BANT recorded. `bant` maps budget/authority/need/timeline to
    ``{"value": bool, "note": str}`` (a bare bool is accepted). The SAL qualify policy says how
    many of the four must be yes (default all four)."""
    recorded = _normalise_bant(bant)
    with transaction.atomic():
        locked = _lock(lead.pk)
        _check_table(locked, "qualify")
        _authorize(actor, locked, "qualify")
        required = bant_required()
        yes = [key for key in BANT_KEYS if recorded[key]["value"]]
        if len(yes) < required:
            no = [key for key in BANT_KEYS if not recorded[key]["value"]]
            raise BantIncomplete(
                f"Qualification needs {required} of budget, authority, need and timeline; "
                f"{len(yes)} recorded as yes (missing: {', '.join(no)}).",
                field="bant",
                missing=no,
            )
        transition = _apply(
            locked,
            move="qualify",
            actor=actor,
            change=_Change(to_stage=Stage.SQL, note=note, bant=recorded),
            expected_stage=Stage.SAL,
        )
    _copy_state(locked, lead)
    return transition


def close(lead: Lead, *, actor: Actor, outcome: str, note: str = "") -> StageTransition:
    """sql → won/lost, as the CRM reports the opportunity's outcome."""
    if outcome not in CLOSE_OUTCOMES:
        raise InvalidReason("Outcome must be 'won' or 'lost'.", field="outcome")
    with transaction.atomic():
        locked = _lock(lead.pk)
        _check_table(locked, "close", outcome)
        _authorize(actor, locked, "close")
        transition = _apply(
            locked,
            move="close",
            actor=actor,
            change=_Change(to_stage=outcome, reason=outcome, note=note),
            expected_stage=Stage.SQL,
        )
    _copy_state(locked, lead)
    return transition


def override(lead: Lead, *, actor: Actor, to_stage: str, note: str) -> StageTransition:
    """Any stage → any stage, by a manager or superuser, with a note (reopen, corrections)."""
    if to_stage not in Stage.values:
        raise InvalidReason(f"Unknown stage '{to_stage}'.", field="to_stage")
    if not note.strip():
        raise NoteRequired("An override needs a note saying why.", field="note")
    with transaction.atomic():
        locked = _lock(lead.pk)
        _authorize(actor, locked, "override")
        if to_stage == locked.stage:
            raise InvalidTransition(lead=locked, move="override", current_stage=locked.stage)
        updates: dict[str, Any] = {}
        decision: dict[str, Any] = {}
        if to_stage == Stage.MQL and locked.owner_id is None:
            team, chosen, decision = assign_round_robin(locked)
            updates = {"owner_id": getattr(chosen, "pk", None), "team_id": getattr(team, "pk", None)}
        elif to_stage in (Stage.LEAD, Stage.RECYCLED):
            updates = {"owner_id": None}
        transition = _apply(
            locked,
            move="override",
            actor=actor,
            change=_Change(
                to_stage=to_stage, reason="override", note=note, updates=updates, assignment=decision
            ),
            expected_stage=locked.stage,
        )
    _copy_state(locked, lead)
    return transition


def reassign(
    lead: Lead, *, actor: Actor, owner=None, note: str = "", reason: str = "reassigned"
) -> StageTransition:
    """Give an open lead a new owner (a manager's choice, or round-robin when `owner` is None).

    The stage does not change; the audit row has ``from_stage == to_stage`` and reason
    ``reassigned`` (reports count stage entries only where the two differ).
    """
    with transaction.atomic():
        locked = _lock(lead.pk)
        _authorize(actor, locked, "reassign")
        if locked.stage not in (Stage.MQL, Stage.SAL):
            raise InvalidTransition(lead=locked, move="reassign", current_stage=locked.stage)
        previous = locked.owner.username if locked.owner_id else None
        if owner is None:
            team, chosen, decision = assign_round_robin(locked, exclude_user_id=locked.owner_id)
        else:
            team, chosen = locked.team, owner
            decision = {"method": "manual", "owner": owner.username}
        decision["previous_owner"] = previous
        now = timezone.now()
        updated = Lead.objects.filter(pk=locked.pk, stage=locked.stage).update(
            owner_id=getattr(chosen, "pk", None),
            team_id=getattr(team, "pk", None),
            updated_at=now,
        )
        if updated != 1:
            raise InvalidTransition(lead=locked, move="reassign", current_stage=locked.stage)
        locked.owner, locked.team = chosen, team
        transition = StageTransition.objects.create(
            lead=locked,
            from_stage=locked.stage,
            to_stage=locked.stage,
            at=now,
            actor_type=actor.type,
            actor=actor.user,
            reason=reason,
            note=note,
            fit_score=locked.fit_score,
            behavior_score=locked.behavior_score,
            definition_version=active_definition_version(),
            owner_id=locked.owner_id,
            assignment=decision,
        )
    _copy_state(locked, lead)
    return transition


def log_touch(
    lead: Lead, *, actor: Actor, kind: str, outcome: str, note: str = "", at: dt.datetime | None = None
) -> Touch:
    """Record a call, email or meeting. The first touch on a SAL stops its first-touch clock, so
    the lead's deadline moves on to the qualify-or-drop clock."""
    with transaction.atomic():
        locked = _lock(lead.pk)
        _authorize(actor, locked, "log_touch")
        if locked.stage not in (Stage.MQL, Stage.SAL, Stage.SQL):
            raise InvalidTransition(lead=locked, move="log_touch", current_stage=locked.stage)
        touch = Touch.objects.create(
            lead=locked, user=actor.user, kind=kind, outcome=outcome, note=note, at=at or timezone.now()
        )
        if locked.stage == Stage.SAL and locked.first_touch_at is None:
            first = touch.at
            clock, due, warn = _sla_deadline(Stage.SAL, locked.stage_entered_at, first)
            Lead.objects.filter(pk=locked.pk).update(
                first_touch_at=first, sla_clock=clock, sla_due_at=due, sla_warn_at=warn,
                sla_warned_at=None, updated_at=timezone.now(),
            )
            locked.first_touch_at, locked.sla_clock, locked.sla_due_at = first, clock, due
            locked.sla_warn_at, locked.sla_warned_at = warn, None
    _copy_state(locked, lead)
    return touch


# --- Helpers the moves share -----------------------------------------------------------------


def _normalise_bant(bant: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    recorded: dict[str, dict[str, Any]] = {}
    for key in BANT_KEYS:
        item = bant.get(key)
        if isinstance(item, Mapping):
            value, note = item.get("value"), str(item.get("note", "") or "")
        else:
            value, note = item, ""
        if not isinstance(value, bool):
            raise BantIncomplete(
                f"BANT '{key}' must be recorded as yes or no.", field=f"bant.{key}", missing=[key]
            )
        recorded[key] = {"value": value, "note": note}
    return recorded


def bant_required() -> int:
    from sla.models import SlaPolicy

    value = (
        SlaPolicy.objects.filter(clock=SlaClock.SAL_QUALIFY, active=True)
        .values_list("bant_required", flat=True)
        .first()
    )
    return DEFAULT_BANT_REQUIRED if value is None else max(0, min(4, value))


def missing_touches(lead: Lead, *, now: dt.datetime | None = None) -> list[str]:
    """What the minimum-touches policy still wants before `unable_to_reach`, in words."""
    from sla.models import SlaPolicy

    policy = SlaPolicy.objects.filter(clock=SlaClock.SAL_MIN_TOUCHES, active=True).first()
    if policy is None:
        return []
    now = now or timezone.now()
    since = max(lead.stage_entered_at, now - dt.timedelta(days=policy.window_days))
    counts = Touch.objects.filter(lead=lead, at__gte=since).aggregate(
        calls=Count("id", filter=Q(kind=TouchKind.CALL)),
        emails=Count("id", filter=Q(kind=TouchKind.EMAIL)),
    )
    missing = []
    if counts["calls"] < policy.min_calls:
        missing.append(f"{counts['calls']} of {policy.min_calls} calls logged")
    if counts["emails"] < policy.min_emails:
        missing.append(f"{counts['emails']} of {policy.min_emails} emails logged")
    return missing


# A lead's lifecycle state: what a move changes and copies back onto the caller's instance.
_STATE_FIELDS = (
    "stage", "stage_entered_at", "owner_id", "team_id", "sla_due_at", "sla_clock",
    "sla_warn_at", "sla_warned_at", "first_touch_at", "recycle_count",
)


def _copy_state(source: Lead, target: Lead) -> None:
    """Let the caller's instance see the new state without another query."""
    if source is target:
        return
    for name in _STATE_FIELDS:
        setattr(target, name, getattr(source, name))
    for relation in ("owner", "team"):
        if relation in source._state.fields_cache:
            target._state.fields_cache[relation] = source._state.fields_cache[relation]
        else:
            target._state.fields_cache.pop(relation, None)


# --- History from elsewhere ----------------------------------------------------------------


@dataclass(frozen=True)
class HistoricalStep:
    """One past stage change, as another tool exported it (or as demo data describes it)."""

    to_stage: str
    at: dt.datetime
    reason: str = ""
    note: str = ""
    owner_id: int | None = None


def record_history(
    lead: Lead, *, steps: list[HistoricalStep], actor: Actor, source: str = "import"
) -> list[StageTransition]:
    """Write past stage changes with their original timestamps, in date order, and set the
    lead's current stage to the latest. Used by the historical import and the demo seed.

    The lifecycle table is not applied: history from another tool may skip stages (MQL straight
    to won), and reports count a skipped stage as passed. Steps already recorded for this lead
    (same target stage at the same moment) are skipped, so re-importing changes nothing.
    Deadlines are set from the active SLA policies, relative to when the last stage was entered.
    """
    return record_history_batch([(lead, steps)], actor=actor, source=source)


_STAGE_VALUES = frozenset(Stage.values)  # `Stage.values` builds a new list on every access
# What record_history_batch reads of a locked lead: plain values, not instances (an import's
# batch need not build a thousand Lead objects to read their stage).
_HISTORY_FIELDS = ("id", *_STATE_FIELDS, "fit_score", "behavior_score")
# The lead columns a recorded history sets, in the order of the tuples given to `update_rows`.
_HISTORY_WRITES = (
    "stage", "stage_entered_at", "sla_clock", "sla_due_at", "sla_warn_at", "sla_warned_at",
    "first_touch_at", "recycle_count", "updated_at", "owner_id",
)
# The StageTransition values built per row, and where each goes in the model's own field order
# (the positional `__init__` is four times cheaper than the keyword one).
_TRANSITION_COLUMNS = (
    "lead_id", "from_stage", "to_stage", "at", "actor_type", "actor_id", "reason", "note",
    "fit_score", "behavior_score", "owner_id", "definition_version", "bant", "assignment",
)


def record_history_batch(
    items: Sequence[tuple[Lead | int, Sequence[HistoricalStep]]], *, actor: Actor, source: str = "import"
) -> list[StageTransition]:
    """`record_history` for many leads in a few statements: one row lock of the batch, one read
    of their recorded history, one bulk insert of the new rows and one bulk update of the leads.

    A 100,000-row import would otherwise cost half a million queries. Steps given twice for one
    lead (two rows of a file naming the same lead) are merged. A lead may be given by its id
    (the import has no instances); an instance given sees the lead's new state afterwards.
    """
    from .bulk import any_of, insert_rows, update_rows

    merged: dict[int, list[HistoricalStep]] = {}
    instances: dict[int, list[Lead]] = {}
    for lead, steps in items:
        for step in steps:
            if step.to_stage not in _STAGE_VALUES:
                raise InvalidReason(f"Unknown stage '{step.to_stage}'.", field="stage")
            _require_aware_moment(step.at)
        if steps:
            if isinstance(lead, Lead):
                merged.setdefault(lead.pk, []).extend(steps)
                instances.setdefault(lead.pk, []).append(lead)
            else:
                merged.setdefault(lead, []).extend(steps)
    if not merged:
        return []
    policies = _active_sla_policies()
    rows: list[tuple[Any, ...]] = []
    with transaction.atomic():
        locked = {
            row[0]: dict(zip(_HISTORY_FIELDS, row))
            for row in Lead.objects.select_for_update(no_key=True)
            .filter(any_of(Lead._meta.pk, merged))
            .order_by("pk")
            .values_list(*_HISTORY_FIELDS)
        }
        recorded: dict[int, set[tuple[str, dt.datetime]]] = {pk: set() for pk in merged}
        latest: dict[int, tuple[dt.datetime, int, str]] = {}
        recycles: dict[int, int] = dict.fromkeys(merged, 0)
        # Unordered: what is kept of it does not depend on the order (no sort of the batch's history).
        history = (
            StageTransition.objects.filter(any_of(StageTransition._meta.get_field("lead"), merged))
            .order_by()
            .values_list("lead_id", "from_stage", "to_stage", "at", "pk")
        )
        for lead_id, from_stage, to_stage, at, pk in history:
            recorded[lead_id].add((to_stage, at))
            if from_stage == to_stage:
                continue  # a reassignment, not a stage entry
            if to_stage == Stage.RECYCLED:
                recycles[lead_id] += 1
            if lead_id not in latest or (at, pk) > latest[lead_id][:2]:
                latest[lead_id] = (at, pk, to_stage)
        changed: list[tuple[Any, ...]] = []
        now = timezone.now()
        actor_type, actor_id = actor.type, actor.user.pk if actor.user is not None else None
        for lead_id, steps in merged.items():
            lead = locked[lead_id]
            have = recorded[lead_id]
            current_at, _, current_stage = latest.get(lead_id, (None, 0, Stage.LEAD))
            ordered = sorted(steps, key=lambda s: s.at)
            fit, behavior, owner_id = lead["fit_score"], lead["behavior_score"], lead["owner_id"]
            count = len(rows)
            for step in ordered:
                if (step.to_stage, step.at) in have:
                    continue
                have.add((step.to_stage, step.at))
                # An earlier step arriving late is recorded, but does not move the lead back.
                late = current_at is not None and step.at < current_at
                from_stage = Stage.LEAD if late else current_stage
                rows.append((
                    lead_id, from_stage, step.to_stage, step.at, actor_type, actor_id,
                    step.reason or source, step.note, fit, behavior,
                    step.owner_id if step.owner_id is not None else owner_id, None, {}, {},
                ))
                if step.to_stage == Stage.RECYCLED and from_stage != step.to_stage:
                    recycles[lead_id] += 1
                if not late:
                    current_stage, current_at = step.to_stage, step.at
            if len(rows) == count:
                continue
            clock, due, warn = _deadline_from(policies, current_stage, current_at, None)
            final_owner = next((s.owner_id for s in reversed(ordered) if s.owner_id is not None), None)
            lead.update(
                stage=current_stage, stage_entered_at=current_at, sla_clock=clock, sla_due_at=due,
                sla_warn_at=warn, sla_warned_at=None, first_touch_at=None,
                recycle_count=recycles[lead_id], updated_at=now,
                owner_id=final_owner if final_owner is not None else owner_id,
            )
            changed.append((lead_id, *(lead[name] for name in _HISTORY_WRITES)))
        if not rows:
            return []
        fields = [StageTransition._meta.get_field(name) for name in _TRANSITION_COLUMNS]
        pks = insert_rows(StageTransition, fields, rows)
        update_rows(Lead, [Lead._meta.get_field(name) for name in _HISTORY_WRITES], changed)
    for lead_id, leads in instances.items():
        state = locked[lead_id]
        for lead in leads:
            for name in _STATE_FIELDS:
                setattr(lead, name, state[name])
            # What `_copy_state` does from a freshly read row: no related object cached.
            lead._state.fields_cache.pop("owner", None)
            lead._state.fields_cache.pop("team", None)
    order = [_TRANSITION_COLUMNS.index(f.attname) for f in StageTransition._meta.concrete_fields[1:]]
    db = transaction.get_connection().alias
    return [StageTransition.from_db(db, None, (pk, *[row[i] for i in order])) for pk, row in zip(pks, rows)]


def _require_aware_moment(moment: dt.datetime) -> None:
    if timezone.is_naive(moment):
        raise InvalidReason("History timestamps must carry a time zone.", field="at")


# --- Set-based promotion -------------------------------------------------------------------
#
# A rescore of every open lead may find tens of thousands that now qualify. `promote_to_mql` per
# lead costs a transaction, a lock, the assignment's queries, the policies' query, an UPDATE, an
# INSERT and the signal each time; here a batch shares them: one transaction that locks the
# batch's promotable rows in id order, one round-robin pass per team, the SLA deadline computed
# once (every lead enters MQL at the same moment), one compare-and-set UPDATE per (owner, team),
# one INSERT of the audit rows and one signal.

PROMOTABLE_STAGES = (Stage.LEAD, Stage.RECYCLED)


def promote_batch_to_mql(
    candidates: Iterable[tuple[int, str]],
    *,
    actor: Actor,
    definition_version: int | None = None,
    note: str = "",
    at: dt.datetime | None = None,
) -> list[StageTransition]:
    """`promote_to_mql` for many leads: `candidates` are (lead id, reason) pairs.

    The result is what one call per lead, in id order, would have left: the same lead columns,
    owners handed out in the same turns, the same audit rows (the assignment decision on each)
    and the same webhook outbox rows. A lead that is no longer in `lead` or `recycled` when the
    batch locks it (promoted, disqualified... by someone else meanwhile) is skipped, never moved
    twice. Returns the audit rows written, in lead id order.
    """
    reasons: dict[int, str] = {}
    for lead_id, reason in candidates:
        _check_promotion(actor=actor, reason=reason, note=note)
        reasons[lead_id] = reason
    if not reasons:
        return []
    with transaction.atomic():
        rows = list(
            Lead.objects.filter(pk__in=_id_set(sorted(reasons)), stage__in=PROMOTABLE_STAGES)
            .order_by("pk")
            .select_for_update(no_key=True, of=("self",))
            .values("id", "stage", "team_id", "owner_id", "country", "fit_score", "behavior_score")
        )
        if not rows:
            return []
        if not actor.is_system:
            for row in rows:
                lead = Lead(pk=row["id"], stage=row["stage"], owner_id=row["owner_id"], team_id=row["team_id"])
                _authorize(actor, lead, "promote_to_mql")
        now = at or timezone.now()
        assigned = assign_round_robin_batch(rows)
        clock, due, warn = _deadline_from(_active_sla_policies(), Stage.MQL, now, None)
        version = definition_version if definition_version is not None else active_definition_version()
        common = {
            "stage": Stage.MQL,
            "stage_entered_at": now,
            "sla_clock": clock,
            "sla_due_at": due,
            "sla_warn_at": warn,
            "sla_warned_at": None,
            "first_touch_at": None,
            "updated_at": timezone.now(),
        }
        placements = {
            row["id"]: (getattr(assigned[row["id"]][1], "pk", None), getattr(assigned[row["id"]][0], "pk", None))
            for row in rows
        }
        # Compare-and-set, as in `_apply`: the rows are locked, so a short count means the lock
        # did not hold (another writer without one) and nothing of the batch may stay.
        updated = _promote_rows(placements, common)
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
                actor=actor.user if not actor.is_system else None,
                reason=reasons[row["id"]],
                note=note,
                fit_score=row["fit_score"],
                behavior_score=row["behavior_score"],
                definition_version=version,
                owner_id=getattr(assigned[row["id"]][1], "pk", None),
                bant={},
                assignment=assigned[row["id"]][2],
            )
            for row in rows
        ]
        insert_objects(StageTransition, written)
        _send_stage_changed_batch(
            StageTransition.objects.filter(pk__in=_id_set([t.pk for t in written])),
            to_stages={Stage.MQL},
        )
    return written


def _promote_rows(placements: dict[int, tuple[int | None, int | None]], common: dict[str, Any]) -> int:
    """Move the leads {id: (owner id, team id)} still in a promotable stage to MQL with the
    `common` column values; the number of rows moved. One `UPDATE ... FROM (VALUES ...)` on
    PostgreSQL (a batch spreads over every rep of several teams: one statement per owner cost
    more than the rest of the promotion), one UPDATE per owner elsewhere."""
    from django.db import connection

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
    fields = [Lead._meta.get_field(name) for name in common]
    sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
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
        return cursor.rowcount


def _send_stage_changed_batch(transitions: QuerySet[StageTransition], *, to_stages: set[str]) -> None:
    """What `_apply` sends per row, for a batch: the batch signal when anything listens to it
    (its receiver does the per-row receivers' work for the set), else `stage_changed` per row
    with the lead as it now is."""

    if stage_changed_batch.has_listeners():
        stage_changed_batch.send(sender=StageTransition, transitions=transitions, to_stages=to_stages)
    elif stage_changed.has_listeners():
        for transition in transitions.select_related("lead", "lead__owner", "lead__team").order_by("pk"):
            stage_changed.send(sender=StageTransition, transition=transition, lead=transition.lead)


# --- The SLA sweep's set-based path ----------------------------------------------------------
#
# The sweep may find a quarter of a million clocks run out at once (a long weekend, a team on
# holiday). One Python call chain per lead would take minutes, so a batch is handled with a few
# statements: lock the due rows (SKIP LOCKED on PostgreSQL, so a second worker takes other rows
# and a second run finds nothing), INSERT ... SELECT the breach and audit rows, one UPDATE per
# action. The same rules as the per-lead moves hold: system actor, reason `sla_expired`.
#
# What a batch costs is mostly pages: every recycled row is a non-HOT update (a dozen index
# entries) plus two inserts. Batches taken in deadline order scatter over the whole table (each
# of 5,000 rows on its own heap page, each page written and WAL-logged in full after a
# checkpoint), so the sweep first reads a window of due ids in deadline order and then claims
# them batch by batch in the order they lie in the table (`due_sla_window`, then
# `expire_sla_batch(lead_ids=...)`): the same rows, a fraction of the pages per batch.

SLA_EXPIRED = "sla_expired"


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
    "id", "stage", "sla_clock", "sla_due_at", "owner_id", "team_id",
    "first_name", "last_name", "email", "stage_entered_at",
)


def _due_rows(
    *, now: dt.datetime, limit: int, lock: bool, lead_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Leads due at `now` (same predicate as the partial index lead_sla_due_idx): the `limit`
    soonest, or those of `lead_ids` (a window from `due_sla_window`) that are still due.

    Under `lock`, rows another worker holds are skipped and the deadline is checked on the
    latest version of each row, so a lead accepted or swept since the window was read is left
    alone. On PostgreSQL each row carries `_tid`, its ctid: the row is locked until the batch
    commits, so the batch's statements find it again by address instead of by index.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        return _due_rows_postgresql(now=now, limit=limit, lock=lock, lead_ids=lead_ids)
    qs = Lead.objects.filter(stage__in=CLOCKED_STAGES, sla_due_at__isnull=False, sla_due_at__lte=now)
    if lead_ids is not None:
        qs = qs.filter(pk__in=lead_ids).order_by("id")
    else:
        qs = qs.order_by("sla_due_at", "id")
    if lock:
        qs = qs.select_for_update(skip_locked=True, no_key=True, of=("self",))
    return list(qs.values(*_DUE_COLUMNS)[:limit])


def _due_rows_postgresql(
    *, now: dt.datetime, limit: int, lock: bool, lead_ids: list[int] | None
) -> list[dict[str, Any]]:
    from django.db import connection

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
            row = dict(zip(_DUE_COLUMNS, values))
            row["_tid"] = tid
            rows.append(row)
    return rows


def due_sla_window(*, now: dt.datetime, limit: int) -> list[int]:
    """Ids of up to `limit` leads due at `now`, the most overdue first, listed in the order
    their rows lie in the table (PostgreSQL's ctid; id elsewhere), for `expire_sla_batch`.

    Read without locks: each batch claims its part of the window with SKIP LOCKED and checks
    the deadline again, so a window may be stale without anything acting twice."""
    from django.db import connection

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
    rows = _due_rows(now=now, limit=limit, lock=False)
    for row in rows:
        row.pop("_tid", None)
    return rows


def expire_sla_batch(
    *,
    now: dt.datetime,
    policies: Mapping[str, Any],
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
    from sla.models import BreachAction, SlaBreach
    from sla.signals import sla_breached


    from django.db import connection

    with transaction.atomic():
        rows = _due_rows(now=now, limit=limit, lock=True, lead_ids=lead_ids)
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
        lead_table = Lead._meta.db_table
        _insert_breaches(acted, now=now, lead_table=lead_table)

        done: list[ExpiredClock] = []
        version = active_definition_version()
        recycled = by_action.get(BreachAction.RECYCLE, [])
        if recycled:
            _insert_recycle_transitions(recycled, now=now, version=version, lead_table=lead_table)
            where, params = _rows_clause(recycled)
            moment = connection.ops.adapt_datetimefield_value(now)
            with connection.cursor() as cursor:
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
            if updated != len(recycled):
                # Rows were locked (or the SQLite write lock held): a mismatch means another
                # writer got in anyway. Roll the whole batch back; the next run retries it.
                raise InvalidTransition(
                    lead=Lead(pk=recycled[0]["id"]), move="recycle", current_stage="changed"
                )
        recycled_ids = [row["id"] for row in recycled]
        if stale:
            Lead.objects.filter(pk__in=stale).update(
                sla_clock="", sla_due_at=None, sla_warn_at=None, updated_at=now
            )
        for row in by_action.get(BreachAction.RECYCLE, []):
            done.append(_expired(row, BreachAction.RECYCLE))

        for row in by_action.get(BreachAction.REASSIGN, []):
            done.append(_reassign_expired(row, now=now, version=version))

        notify_rows = by_action.get(BreachAction.NOTIFY, [])
        if notify_rows:
            _advance_clocks(notify_rows, now=now, qualify=policies.get(SlaClock.SAL_QUALIFY))
            done.extend(_expired(row, BreachAction.NOTIFY) for row in notify_rows)

        closed = set(stale)
        acted_ids = _id_set([row["id"] for row in rows if row["id"] not in closed])
        written = StageTransition.objects.filter(
            lead_id__in=acted_ids, at=now, reason=SLA_EXPIRED, actor_type=ActorType.SYSTEM
        )
        to_stages = {Stage.RECYCLED} if recycled_ids else set()
        to_stages |= {row["stage"] for row in by_action.get(BreachAction.REASSIGN, [])}
        _send_stage_changed_batch(written, to_stages=to_stages)
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
        row["id"], row["first_name"], row["last_name"], row["email"], row["stage"],
        row["sla_clock"], row["sla_due_at"], row["owner_id"], row["team_id"], action, new_owner_id,
    )


def _ids_clause(ids: list[int]) -> tuple[str, list[Any]]:
    """`id` among `ids`: one array parameter on PostgreSQL (5,000 placeholders cost parse time)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return "id = ANY(%s)", [list(ids)]
    return f"id IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _id_set(ids: list[int]) -> RawSQL:
    """`ids` as a subquery for an ``__in`` filter. The querysets the batch signals carry are
    built for every batch and read only when someone subscribes; a plain list would have Django
    prepare 5,000 values for each of them regardless."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(ids),))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(list(ids)),))


def _rows_clause(rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """The claimed `rows` again: by ctid on PostgreSQL (a TID scan reads each heap page once, no
    index descent; the rows are locked, so their addresses hold until the batch's UPDATE), by id
    elsewhere. Only for statements that run before the rows are updated.

    The addresses go as one array literal: psycopg2 quotes a list of 5,000 strings item by item
    (7 ms, with the GIL held, for each of a batch's three statements); a ctid's text, "(page,n)",
    needs no escaping inside double quotes."""
    if rows and "_tid" in rows[0]:
        return "ctid = ANY(%s::tid[])", ['{"' + '","'.join([row["_tid"] for row in rows]) + '"}']
    return _ids_clause([row["id"] for row in rows])


def _insert_breaches(rows: list[dict[str, Any]], *, now: dt.datetime, lead_table: str) -> None:
    """One SlaBreach per claimed row, each with the policy of its clock, in one statement."""
    from django.db import connection

    from sla.models import SlaBreach

    if not rows:
        return
    policies = {row["sla_clock"]: row["policy"] for row in rows}
    # The clock → policy table as a derived table both SQLite and PostgreSQL read.
    clocks = " UNION ALL ".join(["SELECT %s AS clock, %s AS policy_id, %s AS action"] * len(policies))
    clock_params = [value for clock, policy in policies.items() for value in (clock, policy.pk, policy.breach_action)]
    where, params = _rows_clause(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SlaBreach._meta.db_table} "
            "(lead_id, policy_id, clock, stage, owner_id, due_at, detected_at, action) "
            "SELECT l.id, p.policy_id, l.sla_clock, l.stage, l.owner_id, l.sla_due_at, %s, p.action "
            f"FROM {lead_table} l JOIN ({clocks}) p ON p.clock = l.sla_clock "
            f"WHERE l.{where} ON CONFLICT (lead_id, clock, due_at) DO NOTHING",
            [connection.ops.adapt_datetimefield_value(now), *clock_params, *params],
        )


def _insert_recycle_transitions(
    rows: list[dict[str, Any]], *, now: dt.datetime, version: int | None, lead_table: str
) -> None:
    from django.db import connection

    table = StageTransition._meta.db_table
    where, params = _rows_clause(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "
            "(lead_id, from_stage, to_stage, at, actor_type, actor_id, reason, note, fit_score, "
            "behavior_score, definition_version, owner_id, bant, assignment) "
            f"SELECT id, stage, %s, %s, %s, NULL, %s, %s, fit_score, behavior_score, %s, NULL, "
            f"'{{}}', '{{}}' FROM {lead_table} WHERE {where}",
            [
                Stage.RECYCLED, connection.ops.adapt_datetimefield_value(now), ActorType.SYSTEM,
                SLA_EXPIRED,
                "SLA ran out; back to marketing's pool.", version, *params,
            ],
        )


def _reassign_expired(row: dict[str, Any], *, now: dt.datetime, version: int | None) -> ExpiredClock:
    """Hand the lead to the next rep of its team; the clock restarts for the new owner."""
    from sla.models import BreachAction

    lead = Lead.objects.select_related("owner", "team").get(pk=row["id"])
    team, chosen, decision = assign_round_robin(lead, exclude_user_id=lead.owner_id)
    decision["previous_owner"] = lead.owner.username if lead.owner_id else None
    policy = row["policy"]
    Lead.objects.filter(pk=lead.pk).update(
        owner_id=getattr(chosen, "pk", None),
        team_id=getattr(team, "pk", None),
        sla_due_at=policy.due_from(now),
        sla_warn_at=policy.warn_from(now),
        sla_warned_at=None,
        updated_at=now,
    )
    StageTransition.objects.create(
        lead=lead,
        from_stage=lead.stage,
        to_stage=lead.stage,
        at=now,
        actor_type=ActorType.SYSTEM,
        reason=SLA_EXPIRED,
        note=f"SLA '{policy.name}' ran out; reassigned round-robin.",
        fit_score=lead.fit_score,
        behavior_score=lead.behavior_score,
        definition_version=version,
        owner_id=getattr(chosen, "pk", None),
        assignment=decision,
    )
    return _expired(row, BreachAction.REASSIGN, new_owner_id=getattr(chosen, "pk", None))


def _advance_clocks(rows: list[dict[str, Any]], *, now: dt.datetime, qualify: Any) -> None:
    """After a notify-only breach, move each lead to its next open clock, or close the clock."""
    moved: list[Lead] = []
    closed: list[int] = []
    for row in rows:
        if row["sla_clock"] == SlaClock.SAL_FIRST_TOUCH and qualify is not None:
            # The first touch is still missing, but the qualify-or-drop clock keeps running.
            entered = row["stage_entered_at"]
            moved.append(
                Lead(pk=row["id"], sla_clock=qualify.clock, sla_due_at=qualify.due_from(entered),
                     sla_warn_at=qualify.warn_from(entered), sla_warned_at=None, updated_at=now)
            )
            continue
        closed.append(row["id"])
    if moved:
        Lead.objects.bulk_update(
            moved, ["sla_clock", "sla_due_at", "sla_warn_at", "sla_warned_at", "updated_at"]
        )
    if closed:
        Lead.objects.filter(pk__in=closed).update(
            sla_clock="", sla_due_at=None, sla_warn_at=None, updated_at=now
        )
