"""Preview of a draft against history: how many leads would have become MQL, week by week,
under the draft and under the active definition, and how those leads actually ended.

A lead "would have become MQL" at the first of its events in the window after which it
qualifies (fit, knock-outs, required fields, behavior with decay as of that event, or a
hand-raiser). Its week is the ISO week (Monday start) of that event.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Q
from django.utils import timezone

from leads.models import Event, Lead, Stage, StageTransition

from . import engine
from .definitions import FACT_FIELDS, compiled
from .models import QualifiedLeadDefinition

DEFAULT_WINDOW_DAYS = 90
LIST_LIMIT = 100


def _first_qualifying(
    definition: engine.CompiledDefinition,
    facts: dict[str, Any],
    events: list[engine.EventTuple],
    start: dt.datetime,
) -> dt.datetime | None:
    fit = engine.fit_score(definition, facts)
    if engine.knockouts_hit(definition, facts) or engine.missing_fields(definition, facts):
        return None
    if fit < definition.fit_threshold:
        return None
    # The first moment over all history: a lead that already qualified before the window is
    # not a new MQL inside it.
    for index, (_, occurred_at, _) in enumerate(events):
        seen = events[: index + 1]
        behavior = engine.behavior_score(definition, seen, now=occurred_at)
        decision = engine.decide(
            definition,
            stage=Stage.LEAD,
            stage_entered_at=None,
            fit=fit,
            behavior=behavior,
            knockouts=(),
            missing=(),
            hand_raised=engine.hand_raised(definition, seen, stage=Stage.LEAD, stage_entered_at=None),
            now=occurred_at,
        )
        if decision.qualifies:
            return occurred_at if occurred_at >= start else None
    return None


def _week_start(moment: dt.datetime) -> dt.date:
    day = timezone.localtime(moment).date()
    return day - dt.timedelta(days=day.weekday())


def preview(
    draft: QualifiedLeadDefinition,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    against: QualifiedLeadDefinition | None = None,
) -> dict[str, Any]:
    today = timezone.localdate()
    date_to = date_to or today
    date_from = date_from or (date_to - dt.timedelta(days=DEFAULT_WINDOW_DAYS))
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    if against is None:
        against = QualifiedLeadDefinition.objects.filter(state="active").exclude(pk=draft.pk).first()
    compiled_draft = compiled(draft)
    compiled_active = compiled(against) if against is not None else None
    types = compiled_draft.event_types | (compiled_active.event_types if compiled_active else frozenset())

    lead_ids = list(
        Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end, type__in=types)
        .order_by()
        .values_list("lead_id", flat=True)
        .distinct()
    )
    events: dict[int, list[engine.EventTuple]] = defaultdict(list)
    # Events before the window count too (they decay into it), events after it do not.
    for lead_id, event_type, occurred_at, properties in (
        Event.objects.filter(lead_id__in=lead_ids, type__in=types, occurred_at__lt=end)
        .order_by("lead_id", "occurred_at", "id")
        .values_list("lead_id", "type", "occurred_at", "properties")
    ):
        events[lead_id].append((event_type, occurred_at, properties))
    facts = {row["id"]: row for row in Lead.objects.filter(pk__in=lead_ids).values("id", *FACT_FIELDS)}
    outcomes: dict[int, set[str]] = defaultdict(set)
    for lead_id, to_stage in StageTransition.objects.filter(
        Q(lead_id__in=lead_ids), to_stage__in=[Stage.SQL, Stage.WON]
    ).values_list("lead_id", "to_stage"):
        outcomes[lead_id].add(to_stage)
    for lead_id in Lead.objects.filter(pk__in=lead_ids, stage=Stage.WON).values_list("id", flat=True):
        outcomes[lead_id].update({Stage.SQL, Stage.WON})

    def run(definition: engine.CompiledDefinition | None) -> dict[int, dt.date]:
        if definition is None:
            return {}
        result = {}
        for lead_id in lead_ids:
            moment = _first_qualifying(definition, facts[lead_id], events[lead_id], start)
            if moment is not None:
                result[lead_id] = _week_start(moment)
        return result

    draft_set, active_set = run(compiled_draft), run(compiled_active)

    def summary(members: dict[int, dt.date], model: QualifiedLeadDefinition | None) -> dict[str, Any]:
        count = len(members)
        sql = sum(1 for pk in members if Stage.SQL in outcomes[pk] or Stage.WON in outcomes[pk])
        won = sum(1 for pk in members if Stage.WON in outcomes[pk])
        return {
            "version": model.version if model else None,
            "name": model.name if model else None,
            "mql": count,
            "reached_sql": sql,
            "won": won,
            "sql_rate": round(sql / count, 4) if count else None,
            "won_rate": round(won / count, 4) if count else None,
        }

    weeks: list[dict[str, Any]] = []
    week = date_from - dt.timedelta(days=date_from.weekday())
    while week <= date_to:
        weeks.append(
            {
                "week_start": week.isoformat(),
                "draft": sum(1 for w in draft_set.values() if w == week),
                "active": sum(1 for w in active_set.values() if w == week),
            }
        )
        week += dt.timedelta(days=7)

    def listing(ids: set[int]) -> dict[str, Any]:
        rows = (
            Lead.objects.filter(pk__in=ids)
            .order_by("pk")
            .values("id", "email", "company", "stage", "fit_score", "behavior_score")[:LIST_LIMIT]
        )
        return {"count": len(ids), "leads": list(rows)}

    return {
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "draft": summary(draft_set, draft),
        "active": summary(active_set, against),
        "weeks": weeks,
        "newly_qualify": listing(set(draft_set) - set(active_set)),
        "drop_out": listing(set(active_set) - set(draft_set)),
    }
