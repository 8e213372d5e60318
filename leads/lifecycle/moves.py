"""The moves of SPEC section 2, one function each: they check and decide, `core` writes.

Each function opens one transaction, claims the lead's row (`core.claim`: ``select_for_update``;
on SQLite the IMMEDIATE transaction mode serialises writers instead), checks the move against
the table and the actor's right to make it, and hands the change to `core.apply`. Views, API
views, admin actions, imports and tasks call these; none assigns ``lead.stage`` itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads import permissions
from leads.assignment import assign_account_executive, assign_round_robin
from leads.models import Lead, SlaClock, Stage, StageTransition, Touch
from sla import clocks

from .core import Actor, Change, apply, authorize, check_table, claim, copy_state, set_deadlines, set_first_touch
from .errors import BantIncomplete, InvalidReason, InvalidTransition, NoteRequired, TouchesRequired
from .table import (
    ASSIGNABLE_STAGES,
    BANT_KEYS,
    CLOSE_OUTCOMES,
    DISQUALIFY_REASONS,
    LOST_REASONS,
    PROMOTION_REASONS,
    RECYCLE_REASONS,
    REJECT_FROM,
    REJECT_REASONS,
    STAGE_VALUES,
    SYSTEM_RECYCLE_REASONS,
    TOUCHABLE_STAGES,
)


def check_promotion(*, actor: Actor, reason: str, note: str) -> None:
    if reason not in PROMOTION_REASONS:
        raise InvalidReason(_("Unknown promotion reason '%(reason)s'.") % {"reason": reason}, field="reason")
    if not actor.is_system and reason == "manual" and not note.strip():
        raise NoteRequired(_("A manual MQL promotion needs a note saying why."), field="note")


def promote_to_mql(
    lead: Lead,
    *,
    actor: Actor,
    reason: str = "score",
    note: str = "",
    definition_version: int | None = None,
    owner: Any = None,
    at: dt.datetime | None = None,
) -> StageTransition:
    """lead/recycled → mql, assigning an owner round-robin in the territory's team.

    The scoring services decide *whether* a lead qualifies (thresholds, knock-outs, cool-down);
    this function only records it. A manual promotion by a marketer needs a note.
    """
    check_promotion(actor=actor, reason=reason, note=note)
    with transaction.atomic():
        locked = claim(lead.pk)
        authorize(actor, locked, "promote_to_mql")
        check_table(locked, "promote_to_mql")
        if owner is not None:
            team, chosen, decision = locked.team, owner, {"method": "explicit", "owner": owner.username}
        else:
            team, chosen, decision = assign_round_robin(locked)
        change = Change(
            to_stage=Stage.MQL,
            reason=reason,
            note=note,
            updates={"owner_id": getattr(chosen, "pk", None), "team_id": getattr(team, "pk", None)},
            assignment=decision,
        )
        locked.owner, locked.team = chosen, team
        transition = apply(
            locked,
            move="promote_to_mql",
            actor=actor,
            change=change,
            expected_stage=locked.stage,
            at=at,
            definition_version=definition_version,
        )
    copy_state(locked, lead)
    return transition


def accept(lead: Lead, *, actor: Actor, note: str = "") -> StageTransition:
    """mql → sal. A rep of the owning team accepting an unassigned MQL becomes its owner."""
    with transaction.atomic():
        locked = claim(lead.pk)
        check_table(locked, "accept")
        authorize(actor, locked, "accept")
        updates: dict[str, Any] = {}
        if locked.owner_id is None and actor.user is not None and permissions.is_rep(actor.user):
            updates["owner_id"] = actor.user.pk
            locked.owner = actor.user
        transition = apply(
            locked,
            move="accept",
            actor=actor,
            change=Change(to_stage=Stage.SAL, note=note, updates=updates),
            expected_stage=Stage.MQL,
        )
    copy_state(locked, lead)
    return transition


def reject(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """A rep's rejection of an MQL: recycled or disqualified, depending on the reason."""
    if reason in DISQUALIFY_REASONS:
        return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="disqualify", reject=True)
    if reason in RECYCLE_REASONS:
        return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="recycle", reject=True)
    raise InvalidReason(
        _("Unknown rejection reason '%(reason)s'. Choose one of: %(choices)s.")
        % {"reason": reason, "choices": ", ".join(sorted(REJECT_REASONS))},
        field="reason",
        choices=sorted(REJECT_REASONS),
    )


def recycle(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """mql/sal → recycled: back to marketing's pool, history kept, owner cleared."""
    allowed = RECYCLE_REASONS | (SYSTEM_RECYCLE_REASONS if actor.is_system else frozenset())
    if reason not in allowed:
        raise InvalidReason(
            _("Unknown recycle reason '%(reason)s'. Choose one of: %(choices)s.")
            % {"reason": reason, "choices": ", ".join(sorted(allowed))},
            field="reason",
            choices=sorted(allowed),
        )
    return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="recycle")


def disqualify(lead: Lead, *, actor: Actor, reason: str, note: str = "") -> StageTransition:
    """mql/sal → disqualified: not a lead for us (bad data, not a fit, duplicate...)."""
    if reason not in DISQUALIFY_REASONS:
        raise InvalidReason(
            _("Unknown disqualification reason '%(reason)s'. Choose one of: %(choices)s.")
            % {"reason": reason, "choices": ", ".join(sorted(DISQUALIFY_REASONS))},
            field="reason",
            choices=sorted(DISQUALIFY_REASONS),
        )
    return _recycle_or_disqualify(lead, actor=actor, reason=reason, note=note, move="disqualify")


def _recycle_or_disqualify(
    lead: Lead, *, actor: Actor, reason: str, note: str, move: str, reject: bool = False
) -> StageTransition:
    to_stage = Stage.RECYCLED if move == "recycle" else Stage.DISQUALIFIED
    with transaction.atomic():
        locked = claim(lead.pk)
        if reject and locked.stage not in REJECT_FROM:
            raise InvalidTransition(lead=locked, move="reject", current_stage=locked.stage)
        check_table(locked, move, to_stage)
        authorize(actor, locked, "reject" if reject else move)
        if reason == "unable_to_reach" and locked.stage in (Stage.MQL, Stage.SAL):
            missing = clocks.missing_touches(locked)
            if missing:
                raise TouchesRequired(
                    _("Cannot recycle as unable to reach yet: %(missing)s.") % {"missing": "; ".join(missing)},
                    field="reason",
                    missing=missing,
                )
        updates: dict[str, Any] = {}
        if to_stage == Stage.RECYCLED:
            updates = {"owner_id": None, "recycle_count": locked.recycle_count + 1}
        transition = apply(
            locked,
            move=move,
            actor=actor,
            change=Change(to_stage=to_stage, reason=reason, note=note, updates=updates),
            expected_stage=locked.stage,
        )
    copy_state(locked, lead)
    return transition


def qualify(lead: Lead, *, actor: Actor, bant: Mapping[str, Any], note: str = "") -> StageTransition:
    """sal → sql with BANT recorded. `bant` maps budget/authority/need/timeline to
    ``{"value": bool, "note": str}`` (a bare bool is accepted). The SAL qualify policy says how
    many of the four must be yes (default all four)."""
    recorded = _normalise_bant(bant)
    with transaction.atomic():
        locked = claim(lead.pk)
        check_table(locked, "qualify")
        authorize(actor, locked, "qualify")
        required = clocks.bant_required()
        yes = [key for key in BANT_KEYS if recorded[key]["value"]]
        if len(yes) < required:
            no = [key for key in BANT_KEYS if not recorded[key]["value"]]
            raise BantIncomplete(
                _(
                    "Qualification needs %(required)s of budget, authority, need and timeline; "
                    "%(yes)s recorded as yes (missing: %(missing)s)."
                )
                % {"required": required, "yes": len(yes), "missing": ", ".join(no)},
                field="bant",
                missing=no,
            )
        updates, decision = _hand_off(locked)
        transition = apply(
            locked,
            move="qualify",
            actor=actor,
            change=Change(to_stage=Stage.SQL, note=note, bant=recorded, updates=updates, assignment=decision),
            expected_stage=Stage.SAL,
        )
    copy_state(locked, lead)
    return transition


def _hand_off(locked: Lead) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new SQL goes to an account executive of its team (round-robin, skipping away); with
    none available it stays with the rep who qualified it. The rep is kept in the decision."""
    team, executive, decision = assign_account_executive(locked)
    decision["previous_owner"] = locked.owner.username if locked.owner is not None else None
    if executive is None:
        return {}, decision
    locked.owner = executive
    return {"owner_id": executive.pk, "team_id": getattr(team, "pk", locked.team_id)}, decision


def close(
    lead: Lead,
    *,
    actor: Actor,
    outcome: str,
    note: str = "",
    amount: Decimal | None = None,
    reason: str = "",
) -> StageTransition:
    """sql → won/lost, as the AE, a manager or the CRM reports the opportunity's outcome, with
    the deal's amount and, for a loss, why (`LOST_REASONS`)."""
    if outcome not in CLOSE_OUTCOMES:
        raise InvalidReason(_("Outcome must be 'won' or 'lost'."), field="outcome")
    if reason and outcome == Stage.LOST and reason not in LOST_REASONS:
        raise InvalidReason(
            _("Unknown lost reason '%(reason)s'. Choose one of: %(choices)s.")
            % {"reason": reason, "choices": ", ".join(sorted(LOST_REASONS))},
            field="reason",
            choices=sorted(LOST_REASONS),
        )
    if amount is not None and amount < 0:
        raise InvalidReason(_("The amount cannot be negative."), field="amount")
    with transaction.atomic():
        locked = claim(lead.pk)
        check_table(locked, "close", outcome)
        authorize(actor, locked, "close")
        transition = apply(
            locked,
            move="close",
            actor=actor,
            change=Change(
                to_stage=outcome,
                reason=reason if outcome == Stage.LOST and reason else outcome,
                note=note,
                amount=amount,
            ),
            expected_stage=Stage.SQL,
        )
    copy_state(locked, lead)
    return transition


def override(lead: Lead, *, actor: Actor, to_stage: str, note: str) -> StageTransition:
    """Any stage → any stage, by a manager or superuser, with a note (reopen, corrections)."""
    if to_stage not in STAGE_VALUES:
        raise InvalidReason(_("Unknown stage '%(stage)s'.") % {"stage": to_stage}, field="to_stage")
    if not note.strip():
        raise NoteRequired(_("An override needs a note saying why."), field="note")
    with transaction.atomic():
        locked = claim(lead.pk)
        authorize(actor, locked, "override")
        if to_stage == locked.stage:
            raise InvalidTransition(lead=locked, move="override", current_stage=locked.stage)
        updates: dict[str, Any] = {}
        decision: dict[str, Any] = {}
        if to_stage == Stage.MQL and locked.owner_id is None:
            team, chosen, decision = assign_round_robin(locked)
            updates = {"owner_id": getattr(chosen, "pk", None), "team_id": getattr(team, "pk", None)}
        elif to_stage in (Stage.LEAD, Stage.RECYCLED):
            updates = {"owner_id": None}
        transition = apply(
            locked,
            move="override",
            actor=actor,
            change=Change(to_stage=to_stage, reason="override", note=note, updates=updates, assignment=decision),
            expected_stage=locked.stage,
        )
    copy_state(locked, lead)
    return transition


def reassign(
    lead: Lead, *, actor: Actor, owner: Any = None, note: str = "", reason: str = "reassigned"
) -> StageTransition:
    """Give an open lead a new owner (a manager's choice, or round-robin when `owner` is None).

    The stage does not change; the audit row has ``from_stage == to_stage`` and reason
    ``reassigned`` (reports count stage entries only where the two differ).
    """
    with transaction.atomic():
        locked = claim(lead.pk)
        authorize(actor, locked, "reassign")
        if locked.stage not in ASSIGNABLE_STAGES:
            raise InvalidTransition(lead=locked, move="reassign", current_stage=locked.stage)
        previous = locked.owner.username if locked.owner is not None else None
        if owner is None:
            team, chosen, decision = assign_round_robin(locked, exclude_user_id=locked.owner_id)
        else:
            team, chosen = locked.team, owner
            decision = {"method": "manual", "owner": owner.username}
        decision["previous_owner"] = previous
        locked.owner, locked.team = chosen, team
        transition = apply(
            locked,
            move="reassign",
            actor=actor,
            change=Change(
                to_stage=locked.stage,
                reason=reason,
                note=note,
                updates={"owner_id": getattr(chosen, "pk", None), "team_id": getattr(team, "pk", None)},
                assignment=decision,
            ),
            expected_stage=locked.stage,
        )
    copy_state(locked, lead)
    return transition


def log_touch(
    lead: Lead, *, actor: Actor, kind: str, outcome: str, note: str = "", at: dt.datetime | None = None
) -> Touch:
    """Record a call, email or meeting. The first touch stops the speed-to-lead clock, and the
    touch that completes the minimum stops the minimum-touches clock: the lead's deadline moves
    on to its next open clock."""
    with transaction.atomic():
        locked = claim(lead.pk)
        authorize(actor, locked, "log_touch")
        if locked.stage not in TOUCHABLE_STAGES:
            raise InvalidTransition(lead=locked, move="log_touch", current_stage=locked.stage)
        touch = Touch.objects.create(
            lead=locked, user=actor.user, kind=kind, outcome=outcome, note=note, at=at or timezone.now()
        )
        _touch_stops_clocks(locked, touch)
    copy_state(locked, lead)
    return touch


def _touch_stops_clocks(locked: Lead, touch: Touch) -> None:
    """Move the claimed lead's deadline on if `touch` stopped the clock it runs. A clock that
    already breached is not restarted: the lead then runs a later clock, which a touch leaves."""
    if locked.stage not in (Stage.MQL, Stage.SAL):
        return
    first = locked.first_touch_at or touch.at
    met = locked.stage == Stage.SAL and locked.sla_clock in clocks.TOUCH_CLOCKS and not clocks.missing_touches(locked)
    if not (locked.sla_clock == SlaClock.SAL_FIRST_TOUCH or (locked.sla_clock == SlaClock.SAL_MIN_TOUCHES and met)):
        if locked.first_touch_at is None:
            set_first_touch(locked.pk, at=first, now=timezone.now())
            locked.first_touch_at = first
        return
    skip = frozenset({SlaClock.SAL_FIRST_TOUCH})
    deadline = clocks.deadline(
        clocks.active_policies(), locked.stage, locked.stage_entered_at, first, touches_met=met, skip=skip
    )
    set_deadlines({locked.pk: deadline}, now=timezone.now(), first_touch_at=first)
    locked.first_touch_at = first
    locked.sla_clock, locked.sla_due_at, locked.sla_warn_at = deadline
    locked.sla_warned_at = None


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
                _("BANT '%(key)s' must be recorded as yes or no.") % {"key": key}, field=f"bant.{key}", missing=[key]
            )
        recorded[key] = {"value": value, "note": note}
    return recorded
