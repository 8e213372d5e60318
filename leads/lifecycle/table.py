"""The lifecycle table of SPEC section 2: stages, the moves between them and their reasons.

Pure data and two look-ups; every other part of the lifecycle (and the API's error bodies,
the browser's buttons) reads what is allowed from here, so a move is added in one place.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from leads.models import Stage

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
# Stages scoring may promote from (to MQL): the single promotion, the batch and the rescore.
PROMOTABLE_STAGES = (Stage.LEAD, Stage.RECYCLED)
# Stages a lead can be reassigned (or touched) in.
ASSIGNABLE_STAGES = (Stage.MQL, Stage.SAL)
TOUCHABLE_STAGES = (Stage.MQL, Stage.SAL, Stage.SQL)

RECYCLE_REASONS = frozenset({"unable_to_reach", "no_budget", "no_authority", "no_need", "bad_timing", "other"})
SLA_EXPIRED = "sla_expired"
SYSTEM_RECYCLE_REASONS = frozenset({SLA_EXPIRED})
DISQUALIFY_REASONS = frozenset({"inaccurate_data", "not_a_fit", "duplicate", "competitor", "spam"})
REJECT_REASONS = RECYCLE_REASONS | DISQUALIFY_REASONS
# The reasons in words (forms, reports, the dashboard); the codes above never translate.
REASON_LABELS = {
    "unable_to_reach": gettext_lazy("Unable to reach"),
    "no_budget": gettext_lazy("No budget"),
    "no_authority": gettext_lazy("No authority"),
    "no_need": gettext_lazy("No need"),
    "bad_timing": gettext_lazy("Bad timing"),
    "other": gettext_lazy("Other"),
    "inaccurate_data": gettext_lazy("Inaccurate data"),
    "not_a_fit": gettext_lazy("Not a fit"),
    "duplicate": gettext_lazy("Duplicate"),
    "competitor": gettext_lazy("Competitor"),
    "spam": gettext_lazy("Spam"),
}
assert set(REASON_LABELS) == REJECT_REASONS
PROMOTION_REASONS = frozenset({"score", "hand_raiser", "manual", "import"})
BANT_KEYS = ("budget", "authority", "need", "timeline")
CLOSE_OUTCOMES = frozenset({Stage.WON, Stage.LOST})
# Why a deal was lost, as the AE (or the CRM) records it.
LOST_REASONS = frozenset({"price", "competitor", "no_decision", "timing", "features", "other"})
STAGE_VALUES = frozenset(Stage.values)  # `Stage.values` builds a new list on every access


def allowed_moves(stage: str) -> list[str]:
    """Names of the moves the table allows from `stage` (override is always possible)."""
    moves = [name for name, table in ALLOWED_MOVES.items() if stage in table]
    if stage in REJECT_FROM:
        moves.append("reject")
    return sorted(moves)


def allowed_targets(stage: str) -> list[str]:
    return sorted({to for table in ALLOWED_MOVES.values() for to in table.get(stage, ())})
