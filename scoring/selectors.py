"""What the agreement page reads: the version in force, the SLA terms, marketing's commitment,
who signed what, pending changes and the review schedule, as plain data for the template."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from leads.models import Lead, Stage, StageTransition
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


# --- Feedback to marketing: rejected MQLs and the recycled pool --------------------------------


def rejected_mqls(
    *,
    date_from: dt.date,
    date_to: dt.date,
    reason: str = "",
    source: str = "",
    rep: int | None = None,
) -> QuerySet[StageTransition]:
    """MQLs sales turned down (recycled or disqualified from MQL) in the period, newest first,
    with the rep's reason and note: what marketing learns its leads lacked."""
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    qs = StageTransition.objects.filter(
        from_stage=Stage.MQL, to_stage__in=(Stage.RECYCLED, Stage.DISQUALIFIED), at__gte=start, at__lt=end
    )
    if reason:
        qs = qs.filter(reason=reason)
    if source:
        qs = qs.filter(lead__source=source)
    if rep is not None:
        qs = qs.filter(actor_id=rep)
    return qs.select_related("lead", "actor").order_by("-at", "-id")


def rejections_by_reason(qs: QuerySet[StageTransition]) -> list[dict[str, Any]]:
    rows = qs.order_by().values("reason").annotate(count=Count("id")).order_by("-count", "reason")
    return [dict(row) for row in rows]


def recycled_pool(*, limit: int = 100) -> list[dict[str, Any]]:
    """Recycled leads, most recent first: why and when they came back, and when their cool-down
    under the active definition ends (nurture starts now; the lead can re-qualify after)."""
    cooldown = (
        QualifiedLeadDefinition.objects.filter(state=DefinitionState.ACTIVE)
        .values_list("recycle_cooldown_days", flat=True)
        .first()
    )
    last = StageTransition.objects.filter(lead=OuterRef("pk"), to_stage=Stage.RECYCLED).order_by("-at", "-id")
    leads = (
        Lead.objects.filter(stage=Stage.RECYCLED)
        .annotate(why=Subquery(last.values("reason")[:1]), note=Subquery(last.values("note")[:1]))
        .order_by("-stage_entered_at")[:limit]
    )
    return [
        {
            "lead": lead,
            "why": lead.why,
            "note": lead.note,
            "since": lead.stage_entered_at,
            "cooldown_ends": lead.stage_entered_at + dt.timedelta(days=cooldown) if cooldown is not None else None,
        }
        for lead in leads
    ]


# --- Won-customer profile: which attribute values win -------------------------------------------

SIZE_BANDS = ((1, 49, "1–49"), (50, 199, "50–199"), (200, 999, "200–999"), (1000, 4999, "1,000–4,999"))
# Whole words, written so PostgreSQL's and Python's regex dialects read them alike; first match wins.
_WORD = "(^|[^a-z])({})([^a-z]|$)"
SENIORITY = (
    (_WORD.format("ceo|cfo|cto|cmo|coo|cio|chief|founder|owner"), "C-level / founder"),
    (_WORD.format("vp|vice president|president"), "VP"),
    (_WORD.format("director|head"), "Director / head"),
    (_WORD.format("manager"), "Manager"),
)
PROFILE_ATTRIBUTES = ("industry", "size_band", "country", "seniority", "source")


def _size_band() -> Case:
    whens = [When(employees__gte=low, employees__lte=high, then=Value(label)) for low, high, label in SIZE_BANDS]
    whens.append(When(employees__gte=5000, then=Value("5,000+")))
    return Case(*whens, default=Value("unknown"), output_field=CharField())


def _seniority() -> Case:
    whens = [When(job_title__iregex=pattern, then=Value(label)) for pattern, label in SENIORITY]
    return Case(*whens, default=Value("other"), output_field=CharField())


def won_profile(*, date_from: dt.date, date_to: dt.date) -> dict[str, list[dict[str, Any]]]:
    """For the leads that became MQL in the period: per value of each attribute the fit rules use,
    how many MQLs and how many of them were won, and the win rate, counted in the database."""
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    mql_ids = StageTransition.objects.filter(to_stage=Stage.MQL, at__gte=start, at__lt=end).values("lead_id")
    won_ids = StageTransition.objects.filter(to_stage=Stage.WON).values("lead_id")
    leads = Lead.objects.filter(pk__in=mql_ids).annotate(
        size_band=_size_band(),
        seniority=_seniority(),
        is_won=Case(When(pk__in=won_ids, then=Value(1)), default=Value(0), output_field=IntegerField()),
    )
    profile: dict[str, list[dict[str, Any]]] = {}
    for attribute in PROFILE_ATTRIBUTES:
        rows = (
            leads.order_by()
            .values(attribute)
            .annotate(mqls=Count("pk"), won=Sum("is_won"))
            .order_by("-won", "-mqls", attribute)
        )
        profile[attribute] = [
            {
                "value": row[attribute] or "—",
                "mqls": row["mqls"],
                "won": row["won"] or 0,
                "win_rate": (row["won"] or 0) / row["mqls"] if row["mqls"] else None,
            }
            for row in rows
        ]
    return profile
