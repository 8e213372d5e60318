"""Past stage changes from elsewhere: the historical import and the demo seed.

The lifecycle table is not applied: history from another tool may skip stages (MQL straight to
won), and reports count a skipped stage as passed. The lead's current state becomes the latest
recorded stage, written through `core.write_history`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.bulk import any_of
from leads.models import Lead, Stage, StageTransition
from sla import clocks

from .core import STATE_FIELDS, Actor, write_history
from .errors import InvalidReason
from .table import STAGE_VALUES


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


# What record_history_batch reads of a locked lead: plain values, not instances (an import's
# batch need not build a thousand Lead objects to read their stage).
_HISTORY_FIELDS = ("id", *STATE_FIELDS, "fit_score", "behavior_score")
# The lead columns a recorded history sets, in the order of the tuples given to `update_rows`.
_HISTORY_WRITES = (
    "stage",
    "stage_entered_at",
    "sla_clock",
    "sla_due_at",
    "sla_warn_at",
    "sla_warned_at",
    "first_touch_at",
    "recycle_count",
    "updated_at",
    "owner_id",
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
    merged: dict[int, list[HistoricalStep]] = {}
    instances: dict[int, list[Lead]] = {}
    for lead, steps in items:
        for step in steps:
            if step.to_stage not in STAGE_VALUES:
                raise InvalidReason(_("Unknown stage '%(stage)s'.") % {"stage": step.to_stage}, field="stage")
            _require_aware_moment(step.at)
        if steps:
            if isinstance(lead, Lead):
                merged.setdefault(lead.pk, []).extend(steps)
                instances.setdefault(lead.pk, []).append(lead)
            else:
                merged.setdefault(lead, []).extend(steps)
    if not merged:
        return []
    policies = clocks.active_policies()
    rows: list[tuple[Any, ...]] = []
    with transaction.atomic():
        locked = {
            row[0]: dict(zip(_HISTORY_FIELDS, row, strict=False))
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
            state = locked[lead_id]
            have = recorded[lead_id]
            current_at, _rank, current_stage = latest.get(lead_id, (None, 0, Stage.LEAD))
            ordered = sorted(steps, key=lambda s: s.at)
            fit, behavior, owner_id = state["fit_score"], state["behavior_score"], state["owner_id"]
            count = len(rows)
            for step in ordered:
                if (step.to_stage, step.at) in have:
                    continue
                have.add((step.to_stage, step.at))
                # An earlier step arriving late is recorded, but does not move the lead back.
                late = current_at is not None and step.at < current_at
                from_stage = Stage.LEAD if late else current_stage
                rows.append(
                    (
                        lead_id,
                        from_stage,
                        step.to_stage,
                        step.at,
                        actor_type,
                        actor_id,
                        step.reason or source,
                        step.note,
                        fit,
                        behavior,
                        step.owner_id if step.owner_id is not None else owner_id,
                        None,
                        {},
                        {},
                    )
                )
                if step.to_stage == Stage.RECYCLED and from_stage != step.to_stage:
                    recycles[lead_id] += 1
                if not late:
                    current_stage, current_at = step.to_stage, step.at
            if len(rows) == count:
                continue
            clock, due, warn = clocks.deadline(policies, current_stage, current_at, None)
            final_owner = next((s.owner_id for s in reversed(ordered) if s.owner_id is not None), None)
            state.update(
                stage=current_stage,
                stage_entered_at=current_at,
                sla_clock=clock,
                sla_due_at=due,
                sla_warn_at=warn,
                sla_warned_at=None,
                first_touch_at=None,
                recycle_count=recycles[lead_id],
                updated_at=now,
                owner_id=final_owner if final_owner is not None else owner_id,
            )
            changed.append((lead_id, *(state[name] for name in _HISTORY_WRITES)))
        if not rows:
            return []
        written = write_history(_HISTORY_WRITES, changed, rows)
    for lead_id, leads in instances.items():
        final = locked[lead_id]
        for instance in leads:
            for name in STATE_FIELDS:
                setattr(instance, name, final[name])
            # What `core.copy_state` does from a freshly read row: no related object cached.
            instance._state.fields_cache.pop("owner", None)
            instance._state.fields_cache.pop("team", None)
    return written


def _require_aware_moment(moment: dt.datetime) -> None:
    if timezone.is_naive(moment):
        raise InvalidReason(_("History timestamps must carry a time zone."), field="at")
