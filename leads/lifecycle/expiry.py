"""What happens to a lead whose SLA clock ran out, as the sweep (`sla.sweep`) decides it.

The sweep claims the due leads (SKIP LOCKED) and records the breaches; these functions make the
lead's side of it — back to marketing, to another rep, or on to its next clock — through
`core`, as the system actor with reason ``sla_expired``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from leads.assignment import assign_round_robin
from leads.models import Lead
from sla import clocks
from sla.models import SlaPolicy

from .core import SYSTEM, Change, apply, recycle_claimed, set_deadlines
from .table import SLA_EXPIRED


def recycle_expired(rows: Sequence[Mapping[str, Any]], *, now: dt.datetime, version: int | None) -> None:
    """Recycle the claimed leads `rows` to marketing's pool: owner cleared, clock closed."""
    recycle_claimed(rows, now=now, reason=SLA_EXPIRED, note="SLA ran out; back to marketing's pool.", version=version)


def reassign_expired(lead_id: int, *, policy: SlaPolicy, now: dt.datetime, version: int | None) -> int | None:
    """Hand the claimed lead to the next rep of its team; the clock restarts for the new owner.
    Returns the new owner's id (None when nobody could take it)."""
    lead = Lead.objects.select_related("owner", "team").get(pk=lead_id)
    team, chosen, decision = assign_round_robin(lead, exclude_user_id=lead.owner_id)
    decision["previous_owner"] = lead.owner.username if lead.owner is not None else None
    _, due, warn = clocks.restarted(policy, now)
    lead.owner, lead.team = chosen, team
    apply(
        lead,
        move="reassign",
        actor=SYSTEM,
        change=Change(
            to_stage=lead.stage,
            reason=SLA_EXPIRED,
            note=f"SLA '{policy.name}' ran out; reassigned round-robin.",
            updates={
                "owner_id": getattr(chosen, "pk", None),
                "team_id": getattr(team, "pk", None),
                "sla_due_at": due,
                "sla_warn_at": warn,
                "sla_warned_at": None,
            },
            assignment=decision,
        ),
        expected_stage=lead.stage,
        at=now,
        definition_version=version,
    )
    return getattr(chosen, "pk", None)


def advance_clocks(rows: Sequence[Mapping[str, Any]], *, now: dt.datetime, policies: Mapping[str, SlaPolicy]) -> None:
    """After a notify-only breach, move each lead to its next open clock, or close the clock."""
    set_deadlines(
        {
            row["id"]: clocks.after_notified_breach(row["sla_clock"], row["stage_entered_at"], policies, row["stage"])
            for row in rows
        },
        now=now,
    )


def close_clocks(lead_ids: Sequence[int], *, now: dt.datetime) -> None:
    """Close the clocks of leads whose policy was switched off since their deadline was set."""
    set_deadlines(dict.fromkeys(lead_ids, clocks.NO_DEADLINE), now=now)
