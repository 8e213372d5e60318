"""What the agreement page reads: the version in force, the SLA terms, marketing's commitment,
who signed what, pending changes and the review schedule, as plain data for the template."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from reports.models import QuarterlyTarget
from sla.models import ChangeState, SlaPolicy, SlaPolicyChange

from .models import DefinitionReview, DefinitionSignature, DefinitionState, QualifiedLeadDefinition


def _quarter(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def current_agreement(*, today: dt.date | None = None) -> dict[str, Any]:
    today = today or timezone.localdate()
    definition = (
        QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE)
        .select_related("marketing_signed_by", "sales_signed_by")
        .prefetch_related(
            "fit_rules",
            "behavior_rules",
            "knockouts",
            Prefetch(
                "signatures",
                queryset=DefinitionSignature.objects.filter(voided_at__isnull=True).select_related("signer"),
                to_attr="standing_signatures",
            ),
        )
        .first()
    )
    year, quarter = _quarter(today)
    last_review = None
    if definition is not None:
        last_review = DefinitionReview.objects.filter(definition=definition).prefetch_related("attendees").first()
    return {
        "definition": definition,
        "overdue": bool(definition and definition.review_by and definition.review_by < today),
        "last_review": last_review,
        "policies": list(SlaPolicy.objects.filter(active=True).select_related("calendar").order_by("stage", "clock")),
        "pending_sla_changes": list(
            SlaPolicyChange.objects.filter(state=ChangeState.PENDING).select_related(
                "policy", "proposed_by", "marketing_signed_by", "sales_signed_by"
            )
        ),
        "drafts": list(
            QualifiedLeadDefinition.objects.filter(state=DefinitionState.DRAFT).select_related(
                "marketing_signed_by", "sales_signed_by"
            )
        ),
        "year": year,
        "quarter": quarter,
        "targets": list(QuarterlyTarget.objects.filter(year=year, quarter=quarter).select_related("team")),
    }
