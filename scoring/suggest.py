"""A draft definition suggested from the leads whose outcome is known (SPEC section 3).

Won leads are the positives; lost and disqualified leads, and leads recycled more than
`RECYCLED_HORIZON_DAYS` ago (nobody brought them back), are the negatives. The learning is in
`scoring.learn` (pure); this service loads the history, hands it over, and saves the result as
an ordinary unsigned draft, so activating it needs both signatures like any other draft.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from leads.models import PROFILE_FIELDS, Lead, Stage

from . import definitions, learn
from .learn import DEFAULT_TARGET_MQL_RATE, SuggestError
from .models import QualifiedLeadDefinition

RECYCLED_HORIZON_DAYS = 90
NOT_WON_STAGES = (Stage.LOST, Stage.DISQUALIFIED)

__all__ = ["DEFAULT_TARGET_MQL_RATE", "SuggestError", "SuggestedDraft", "outcome_history", "suggest_definition"]


@dataclass
class SuggestedDraft:
    definition: QualifiedLeadDefinition
    skipped: list[dict[str, str]]
    validation: dict[str, Any]


def outcome_history(
    *, date_from: dt.date | None = None, date_to: dt.date | None = None, now: dt.datetime | None = None
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Facts and outcome of every lead whose outcome is known, decided within the period."""
    now = now or timezone.now()
    horizon = now - dt.timedelta(days=RECYCLED_HORIZON_DAYS)
    qs = Lead.objects.filter(
        Q(stage=Stage.WON) | Q(stage__in=NOT_WON_STAGES) | Q(stage=Stage.RECYCLED, stage_entered_at__lte=horizon)
    )
    if date_from:
        qs = qs.filter(stage_entered_at__date__gte=date_from)
    if date_to:
        qs = qs.filter(stage_entered_at__date__lte=date_to)
    rows, won = [], []
    for row in qs.order_by("pk").values(*PROFILE_FIELDS, "attributes", "stage").iterator(chunk_size=5000):
        won.append(row.pop("stage") == Stage.WON)
        rows.append(row)
    return rows, won


def _check_rate(target_mql_rate: float) -> None:
    if isinstance(target_mql_rate, bool) or not isinstance(target_mql_rate, (int, float)):
        raise SuggestError(_("The target MQL rate is a number between 0 and 1, e.g. 0.2."), code="validation_error")
    if not 0 < target_mql_rate < 1:
        raise SuggestError(
            _("The target MQL rate is a share of leads between 0 and 1 (exclusive), e.g. 0.2."),
            code="validation_error",
            fields={"target_mql_rate": [_("Between 0 and 1, e.g. 0.2.")]},
        )


def suggest_definition(
    *,
    user,
    name: str | None = None,
    fields: Sequence[str] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    target_mql_rate: float = DEFAULT_TARGET_MQL_RATE,
) -> SuggestedDraft:
    """A new unsigned draft whose fit rules are learnt from the history; behaviour rules,
    knockouts and the other settings are copied from the active definition (the suggestion is
    about fit only). Raises `SuggestError` when there is too little history to learn from."""
    _check_rate(target_mql_rate)
    rows, won = outcome_history(date_from=date_from, date_to=date_to)
    active = definitions.active_definition()
    result = learn.learn(
        rows,
        won,
        fields=fields,
        target_mql_rate=float(target_mql_rate),
        active=definitions.compiled(active) if active else None,
    )
    base = definitions.definition_to_dict(active) if active else {}
    figures = result.validation["suggestion"]
    data = {
        **base,
        "name": name or _("Suggested from won and lost leads (%(date)s)") % {"date": timezone.localdate().isoformat()},
        "fit_threshold": result.fit_threshold,
        "fit_rules": result.fit_rules,
        "notes": (
            f"Suggested from {sum(won)} won and {len(won) - sum(won)} not won leads. On the held-out "
            f"{result.validation['held_out']}: AUC {figures['auc']}, MQL rate {figures['mql_rate']}, "
            f"won share {figures['won_share']} at threshold {result.fit_threshold}."
        ),
    }
    draft = definitions.create_definition(data, user=user)
    return SuggestedDraft(definition=draft, skipped=result.skipped, validation=result.validation)
