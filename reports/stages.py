"""The stages as the reports count them: the funnel's main line, its exits, and what a "stage
entry" is.

A `StageTransition` whose `from_stage == to_stage` is a reassignment, not a stage entry; every
"entered" in the reports (live, and the rollup built from `entries()`) excludes it.
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from leads.models import Stage, StageTransition

# The main line of the funnel, in order; a lead that reaches a later one has passed the earlier.
CHAIN = (Stage.LEAD, Stage.MQL, Stage.SAL, Stage.SQL, Stage.WON)
EXITS = (Stage.LOST, Stage.RECYCLED, Stage.DISQUALIFIED)
REJECTION_STAGES = (Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST)


def rank(stage: str) -> int:
    """A stage's place on the main line (-1 off it): reaching a later one passes the earlier."""
    return CHAIN.index(stage) if stage in CHAIN else -1


def entries() -> QuerySet[StageTransition]:
    """Stage entries: every transition except reassignments."""
    return StageTransition.objects.exclude(from_stage=F("to_stage"))


def reached_q(stage: str) -> Q:
    """An entry into `stage` or a later stage of the main line (skipping counts as passing)."""
    return Q(to_stage__in=[s for s in CHAIN if rank(s) >= rank(stage)])
