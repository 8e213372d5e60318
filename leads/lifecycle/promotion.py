"""Set-based promotion to MQL, for a rescore that finds thousands of leads qualifying at once.

`moves.promote_to_mql` per lead costs a transaction, a lock, the assignment's queries, the
policies' query, an UPDATE, an INSERT and the signal each time; here a batch shares them: one
transaction that locks the batch's promotable rows in id order, one round-robin pass per team,
the SLA deadline computed once (every lead enters MQL at the same moment), one compare-and-set
UPDATE, one INSERT of the audit rows and one signal (`core.write_promotions`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from leads.assignment import assign_round_robin_batch
from leads.bulk import id_set
from leads.models import Lead, Stage, StageTransition
from sla import clocks

from .core import Actor, authorize, write_promotions
from .moves import check_promotion
from .table import PROMOTABLE_STAGES


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
        check_promotion(actor=actor, reason=reason, note=note)
        reasons[lead_id] = reason
    if not reasons:
        return []
    with transaction.atomic():
        rows = list(
            Lead.objects.filter(pk__in=id_set(sorted(reasons)), stage__in=PROMOTABLE_STAGES)
            .order_by("pk")
            .select_for_update(no_key=True, of=("self",))
            .values("id", "stage", "team_id", "owner_id", "country", "fit_score", "behavior_score")
        )
        if not rows:
            return []
        if not actor.is_system:
            for row in rows:
                lead = Lead(pk=row["id"], stage=row["stage"], owner_id=row["owner_id"], team_id=row["team_id"])
                authorize(actor, lead, "promote_to_mql")
        now = at or timezone.now()
        assigned = assign_round_robin_batch(rows)
        version = definition_version if definition_version is not None else clocks.active_definition_version()
        return write_promotions(
            rows,
            {
                row["id"]: (getattr(assigned[row["id"]][1], "pk", None), getattr(assigned[row["id"]][0], "pk", None))
                for row in rows
            },
            actor=actor,
            reasons=reasons,
            assignments={row["id"]: assigned[row["id"]][2] for row in rows},
            note=note,
            now=now,
            deadline=clocks.deadline(clocks.active_policies(), Stage.MQL, now, None),
            definition_version=version,
        )
