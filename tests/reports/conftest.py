"""A small hand-built history whose report numbers are worked out by hand in the tests.

Calendar: UTC, Monday–Friday 09:00–17:00. SLAs: MQL decision 16 business hours, SAL first
touch 8. Week 1 starts Monday 2 November 2026; the range is weeks 1 and 2.

  A  webinar, rep1: MQL Mon 10:00, reassigned Mon 12:00 (not a stage entry), SAL Mon 14:00 (4 h),
     touch Mon 15:00 (1 h), SQL Tue 10:00, won Fri 10:00 (4.0 days from MQL).
  B  webinar, rep1: MQL Fri 15:00, SAL next Mon 11:00 (4 business hours over the weekend),
     touch Tue 09:30 (6.5 h).
  C  ads, rep2: MQL Mon 10:00, recycled Wed 10:00 (16 h, unable_to_reach), back to MQL Thu 09:00,
     recycled again Fri 09:00 (8 h, unable_to_reach): recycled more than once.
  D  ads, rep2: imported MQL Tue 09:00 straight to won Thu 09:00 (16 h; skips SAL and SQL;
     2.0 days).
  E  webinar, rep1: MQL Wed 09:00, disqualified Wed 13:00 (4 h, spam).
"""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import ActorType, Stage, StageTransition, Touch
from sla.models import BusinessCalendar, SlaPolicy
from tests.factories import LeadFactory

MONDAY = dt.date(2026, 11, 2)
RANGE = (MONDAY, MONDAY + dt.timedelta(days=13))


def at(day_offset: int, hour: int, minute: int = 0) -> dt.datetime:
    day = MONDAY + dt.timedelta(days=day_offset)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def move(lead, from_stage: str, to_stage: str, moment: dt.datetime, reason: str = "") -> StageTransition:
    return StageTransition.objects.create(
        lead=lead,
        from_stage=from_stage,
        to_stage=to_stage,
        at=moment,
        actor_type=ActorType.SYSTEM,
        reason=reason,
        owner=lead.owner,
    )


@pytest.fixture
def sla_policies(db):
    calendar = BusinessCalendar.objects.create(name="Office", timezone="UTC")
    SlaPolicy.objects.create(
        name="Decide on MQL", stage=Stage.MQL, clock="mql_decision", calendar=calendar, duration_hours=16
    )
    SlaPolicy.objects.create(
        name="First touch", stage=Stage.SAL, clock="sal_first_touch", calendar=calendar, duration_hours=8
    )
    return calendar


@pytest.fixture
def history(sla_policies, team, rep, rep2):
    created = at(0, 8)
    common = {"team": team, "created_at": created}
    a = LeadFactory(email="a@x.example", source="webinar", owner=rep, stage=Stage.WON, **common)
    move(a, Stage.LEAD, Stage.MQL, at(0, 10), "score")
    move(a, Stage.MQL, Stage.MQL, at(0, 12), "reassigned")
    move(a, Stage.MQL, Stage.SAL, at(0, 14))
    Touch.objects.create(lead=a, user=rep, kind="call", outcome="connected", at=at(0, 15))
    move(a, Stage.SAL, Stage.SQL, at(1, 10))
    move(a, Stage.SQL, Stage.WON, at(4, 10))

    b = LeadFactory(email="b@x.example", source="webinar", owner=rep, stage=Stage.SAL, **common)
    move(b, Stage.LEAD, Stage.MQL, at(4, 15), "score")
    move(b, Stage.MQL, Stage.SAL, at(7, 11))
    Touch.objects.create(lead=b, user=rep, kind="email", outcome="replied", at=at(8, 9, 30))

    c = LeadFactory(email="c@x.example", source="ads", owner=rep2, stage=Stage.RECYCLED, recycle_count=2, **common)
    move(c, Stage.LEAD, Stage.MQL, at(0, 10), "score")
    move(c, Stage.MQL, Stage.RECYCLED, at(2, 10), "unable_to_reach")
    move(c, Stage.RECYCLED, Stage.MQL, at(3, 9), "hand_raiser")
    move(c, Stage.MQL, Stage.RECYCLED, at(4, 9), "unable_to_reach")

    d = LeadFactory(email="d@x.example", source="ads", owner=rep2, stage=Stage.WON, **common)
    move(d, Stage.LEAD, Stage.MQL, at(1, 9), "import")
    move(d, Stage.MQL, Stage.WON, at(3, 9), "import")

    e = LeadFactory(email="e@x.example", source="webinar", owner=rep, stage=Stage.DISQUALIFIED, **common)
    move(e, Stage.LEAD, Stage.MQL, at(2, 9), "score")
    move(e, Stage.MQL, Stage.DISQUALIFIED, at(2, 13), "spam")
    return {"a": a, "b": b, "c": c, "d": d, "e": e}
