"""Per-person figures for the dashboard (issue 25): what each rep did with the MQLs they got,
and what each account executive made of the SQLs handed to them.

Everything is aggregated in the database from the append-only stage history and the touches:
a handful of grouped queries per report, whatever the number of leads; Python only lays the
groups side by side. Periods are the reports' (`reports.filters.bounds`): from the first day's
midnight to the midnight after the last, in the site's time zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum

from leads.lifecycle.table import REASON_LABELS
from leads.models import Stage, StageTransition, TeamMembership, Touch
from leads.permissions import ACCOUNT_EXECUTIVE, SALES_REP

from .filters import bounds
from .sql import epoch_seconds_sql, fetch, quoted_table

REJECTED_STAGES = (Stage.RECYCLED, Stage.DISQUALIFIED)


def _reason_words(reason: str) -> str:
    """A rejection reason as the rep's words, in lower case mid-sentence ("no budget")."""
    label = str(REASON_LABELS[reason]) if reason in REASON_LABELS else reason.replace("_", " ")
    return label[:1].lower() + label[1:]


@dataclass
class RepFigures:
    username: str
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    touches: int = 0
    touched_leads: int = 0
    speed_to_lead_hours: float | None = None
    sqls: int = 0
    won: int = 0

    @property
    def rejected_reasons_text(self) -> str:
        """ "no budget 2, other 1": the reasons in the page's language, most frequent first."""
        return ", ".join(f"{_reason_words(reason)} {n}" for reason, n in self.rejected_by_reason.items())

    @property
    def touches_per_lead(self) -> float | None:
        return round(self.touches / self.touched_leads, 1) if self.touched_leads else None


@dataclass
class ExecutiveFigures:
    username: str
    sqls_received: int = 0
    won: int = 0
    lost: int = 0
    won_amount: Decimal = Decimal(0)

    @property
    def win_rate(self) -> float | None:
        closed = self.won + self.lost
        return round(self.won / closed, 3) if closed else None


def _people(role: str, team_id: int | None) -> dict[int, str]:
    users = get_user_model().objects.filter(groups__name=role, is_active=True)
    if team_id is not None:
        users = users.filter(pk__in=TeamMembership.objects.filter(team_id=team_id).values("user_id"))
    return dict(users.order_by("username").values_list("pk", "username"))


def rep_productivity(*, date_from: dt.date, date_to: dt.date, team_id: int | None = None) -> list[RepFigures]:
    """Per rep, over the period: MQLs received (assigned or reassigned to them), accepted,
    rejected (and why), touches and touches per touched lead, the median hours from MQL to the
    first touch (speed to lead) of the MQLs they received, SQLs they qualified, and how many of
    the leads they qualified were won in the period."""
    reps = _people(SALES_REP, team_id)
    if not reps:
        return []
    start, end = bounds(date_from, date_to)
    figures = {pk: RepFigures(username=name) for pk, name in reps.items()}
    in_period = StageTransition.objects.filter(at__gte=start, at__lt=end)

    for row in in_period.filter(to_stage=Stage.MQL, owner_id__in=reps).values("owner_id").annotate(n=Count("id")):
        figures[row["owner_id"]].received = row["n"]
    by_actor: Any = (
        in_period.filter(actor_id__in=reps)
        .values("actor_id")
        .annotate(
            accepted=Count("id", filter=Q(from_stage=Stage.MQL, to_stage=Stage.SAL)),
            sqls=Count("id", filter=Q(from_stage=Stage.SAL, to_stage=Stage.SQL)),
        )
    )
    for row in by_actor:
        figures[row["actor_id"]].accepted = row["accepted"]
        figures[row["actor_id"]].sqls = row["sqls"]
    rejections: Any = (
        in_period.filter(actor_id__in=reps, from_stage=Stage.MQL, to_stage__in=REJECTED_STAGES)
        .values("actor_id", "reason")
        .annotate(n=Count("id"))
        .order_by("actor_id", "-n", "reason")
    )
    for row in rejections:
        rep = figures[row["actor_id"]]
        rep.rejected += row["n"]
        rep.rejected_by_reason[row["reason"] or "other"] = row["n"]
    touches: Any = (
        Touch.objects.filter(at__gte=start, at__lt=end, user_id__in=reps)
        .values("user_id")
        .annotate(n=Count("id"), leads=Count("lead_id", distinct=True))
    )
    for row in touches:
        figures[row["user_id"]].touches = row["n"]
        figures[row["user_id"]].touched_leads = row["leads"]
    for rep_id, hours in _speed_to_lead(list(reps), start, end):
        figures[rep_id].speed_to_lead_hours = round(hours, 2)
    for rep_id, won in _won_after_qualifying(list(reps), start, end):
        figures[rep_id].won = won
    return list(figures.values())


def _in_list(values: list[int]) -> tuple[str, list[int]]:
    return ", ".join(["%s"] * len(values)), values


def _speed_to_lead(reps: list[int], start: dt.datetime, end: dt.datetime) -> list[tuple[int, float]]:
    """Median hours from each MQL a rep received in the period (assigned or reassigned to them:
    the clock is theirs from then) to the lead's first touch after it, per rep: the middle row(s)
    of each rep's spans, ranked with window functions."""
    transitions, touches = quoted_table(StageTransition), quoted_table(Touch)
    marks, params = _in_list(reps)
    span = f"({epoch_seconds_sql('first_touch')} - {epoch_seconds_sql('mql_at')}) / 3600.0"
    sql = f"""
        WITH received AS (
            SELECT t.owner_id AS rep, t.at AS mql_at,
                   (SELECT MIN(tc.at) FROM {touches} tc WHERE tc.lead_id = t.lead_id AND tc.at >= t.at) AS first_touch
            FROM {transitions} t
            WHERE t.to_stage = %s AND t.at >= %s AND t.at < %s AND t.owner_id IN ({marks})
        ),
        spans AS (
            SELECT rep, {span} AS hours FROM received WHERE first_touch IS NOT NULL
        ),
        ranked AS (
            SELECT rep, hours, ROW_NUMBER() OVER (PARTITION BY rep ORDER BY hours) AS rn,
                   COUNT(*) OVER (PARTITION BY rep) AS n
            FROM spans
        )
        SELECT rep, AVG(hours) FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY rep
    """
    return [(int(rep), float(hours)) for rep, hours in fetch(sql, [Stage.MQL, start, end, *params])]


def _won_after_qualifying(reps: list[int], start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
    """Leads won in the period, counted for the rep who qualified them."""
    transitions = quoted_table(StageTransition)
    marks, params = _in_list(reps)
    sql = f"""
        SELECT q.actor_id, COUNT(DISTINCT w.lead_id)
        FROM {transitions} w
        JOIN {transitions} q ON q.lead_id = w.lead_id AND q.to_stage = %s AND q.from_stage = %s
        WHERE w.to_stage = %s AND w.from_stage = %s AND w.at >= %s AND w.at < %s AND q.actor_id IN ({marks})
        GROUP BY q.actor_id
    """
    rows = fetch(sql, [Stage.SQL, Stage.SAL, Stage.WON, Stage.SQL, start, end, *params])
    return [(int(rep), int(won)) for rep, won in rows]


def executive_outcomes(*, date_from: dt.date, date_to: dt.date, team_id: int | None = None) -> list[ExecutiveFigures]:
    """SQL → won by account executive: SQLs handed to each AE in the period, deals they closed
    won or lost in it, the won amount and the win rate (won ÷ closed)."""
    executives = _people(ACCOUNT_EXECUTIVE, team_id)
    if not executives:
        return []
    start, end = bounds(date_from, date_to)
    figures = {pk: ExecutiveFigures(username=name) for pk, name in executives.items()}
    rows: Any = (
        StageTransition.objects.filter(at__gte=start, at__lt=end, owner_id__in=executives)
        .values("owner_id")
        .annotate(
            received=Count("id", filter=Q(to_stage=Stage.SQL) & ~Q(from_stage=Stage.SQL)),
            won=Count("id", filter=Q(from_stage=Stage.SQL, to_stage=Stage.WON)),
            lost=Count("id", filter=Q(from_stage=Stage.SQL, to_stage=Stage.LOST)),
            amount=Sum("amount", filter=Q(from_stage=Stage.SQL, to_stage=Stage.WON)),
        )
    )
    for row in rows:
        executive = figures[row["owner_id"]]
        executive.sqls_received, executive.won, executive.lost = row["received"], row["won"], row["lost"]
        executive.won_amount = row["amount"] or Decimal(0)
    return list(figures.values())
