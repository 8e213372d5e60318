"""The demo's history, lived rather than written (issue 25): every stage change, assignment and
touch of the demo leads is made by the real lifecycle functions, in time order, with the clock
(`django.utils.timezone.now`) set to the moment each step happens.

So the demo cannot contradict itself: owners, round-robin stamps, SLA deadlines, first-touch
clocks and audit rows are whatever the application itself wrote; scores are the scoring
engine's (the final rescore also promotes whatever the definition says qualifies). A step the
lifecycle refuses (an SLA the lead already missed, a rep away) is skipped, as a user's would be.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest import mock

from leads import lifecycle
from leads.lifecycle import SYSTEM, Actor, TransitionError
from leads.models import Lead, Stage, TouchKind, TouchOutcome

Step = Callable[[Lead], None]

BANT_YES = {key: {"value": True, "note": ""} for key in lifecycle.BANT_KEYS}
HANDOFF_NOTES = [
    "Budget approved for Q3; wants a demo with their ops lead.",
    "Replacing a spreadsheet process; 40 seats to start.",
    "Champion is the VP; procurement needs a security review.",
    "Evaluating us against one competitor; decision this month.",
]
LOST_REASONS = ["price", "competitor", "no_decision", "timing", "features"]


@contextmanager
def clock_at(moment: dt.datetime) -> Iterator[None]:
    """`timezone.now()` is `moment` inside the block: what every writer stamps."""
    with mock.patch("django.utils.timezone.now", lambda: moment):
        yield


class Story:
    """The planned steps of every demo lead, played back in time order."""

    def __init__(self, rng: random.Random, now: dt.datetime) -> None:
        self.rng, self.now = rng, now
        self._queue: list[tuple[dt.datetime, int, int, Step]] = []
        self._order = 0

    def at(self, moment: dt.datetime, lead: Lead, step: Step) -> None:
        moment = min(moment, self.now - dt.timedelta(minutes=5))
        heapq.heappush(self._queue, (moment, self._order, lead.pk, step))
        self._order += 1

    def play(self) -> int:
        """Run every step at its moment; the number the lifecycle refused (skipped)."""
        refused = 0
        while self._queue:
            moment, _order, lead_id, step = heapq.heappop(self._queue)
            with clock_at(moment):
                lead = Lead.objects.select_related("owner", "team").get(pk=lead_id)
                try:
                    step(lead)
                except TransitionError:
                    refused += 1
        return refused


def plan(story: Story, lead: Lead, ending: str) -> None:
    """The steps that take `lead` to `ending`, spaced as real hand-offs are."""
    rng, now, created = story.rng, story.now, lead.created_at
    budget = (now - created).total_seconds()

    def hours(low: float, high: float) -> dt.timedelta:
        return dt.timedelta(hours=rng.uniform(low, high))

    if ending == "lead":
        return
    if ending == "mql_open":
        story.at(max(created, now - hours(1, 20)), lead, promote("score"))
        return
    if ending == "mql_breached":
        story.at(max(created, now - hours(84, 144)), lead, promote("score"))
        return
    mql_at = created + dt.timedelta(seconds=rng.uniform(0.05, 0.5) * budget)
    if ending == "sal_open":
        mql_at = max(created, now - dt.timedelta(days=rng.uniform(2, 12)))
    story.at(mql_at, lead, promote("hand_raiser" if rng.random() < 0.2 else "score"))
    if ending in ("recycled", "disqualified") and rng.random() < 0.5:
        reason = (
            rng.choice(["no_budget", "bad_timing", "no_need", "other"])
            if ending == "recycled"
            else rng.choice(["not_a_fit", "inaccurate_data", "competitor"])
        )
        story.at(
            mql_at + hours(2, 14),
            lead,
            by_owner(lambda lead, actor: lifecycle.reject(lead, actor=actor, reason=reason)),
        )
        return
    if ending == "recycled_again_mql":
        story.at(
            mql_at + hours(4, 14),
            lead,
            by_owner(lambda lead, actor: lifecycle.reject(lead, actor=actor, reason="bad_timing")),
        )
        story.at(now - hours(1, 8), lead, promote("hand_raiser"))
        return
    sal_at = mql_at + hours(0.5, 12)
    story.at(sal_at, lead, by_owner(lambda lead, actor: lifecycle.accept(lead, actor=actor)))
    touch_at = sal_at
    for _ in range(rng.randint(1, 6)):
        touch_at = touch_at + hours(0.3, 40)
        kind = rng.choice([TouchKind.CALL, TouchKind.CALL, TouchKind.EMAIL, TouchKind.MEETING])
        outcome = {
            TouchKind.CALL: rng.choice([TouchOutcome.CONNECTED, TouchOutcome.NO_ANSWER, TouchOutcome.VOICEMAIL]),
            TouchKind.EMAIL: rng.choice([TouchOutcome.REPLIED, TouchOutcome.BOUNCED]),
            TouchKind.MEETING: TouchOutcome.CONNECTED,
        }[kind]
        story.at(touch_at, lead, touch(kind, outcome))
    if ending == "sal_open":
        return
    decided_at = touch_at + hours(2, 48)
    if ending in ("recycled", "disqualified"):
        if ending == "recycled":
            step = by_owner(lambda lead, actor: lifecycle.recycle(lead, actor=actor, reason="no_budget"))
        else:
            step = by_owner(lambda lead, actor: lifecycle.disqualify(lead, actor=actor, reason="not_a_fit"))
        story.at(decided_at, lead, step)
        return
    note = rng.choice(HANDOFF_NOTES)
    story.at(
        decided_at,
        lead,
        by_owner(lambda lead, actor: lifecycle.qualify(lead, actor=actor, bant=BANT_YES, note=note)),
    )
    if ending in ("won", "lost"):
        amount = Decimal(rng.choice([4_800, 12_000, 18_500, 36_000, 72_000]))
        reason = rng.choice(LOST_REASONS) if ending == "lost" else ""
        story.at(
            decided_at + hours(48, 400),
            lead,
            by_owner(
                lambda lead, actor: lifecycle.close(lead, actor=actor, outcome=ending, amount=amount, reason=reason)
            ),
        )


def promote(reason: str) -> Step:
    def step(lead: Lead) -> None:
        lifecycle.promote_to_mql(lead, actor=SYSTEM, reason=reason)

    return step


def by_owner(move: Callable[[Lead, Actor], Any]) -> Step:
    """A move made by whoever owns the lead at that moment (the rep, or the AE after SQL); an
    unowned lead (no rep was available) waits, so the step is skipped."""

    def step(lead: Lead) -> None:
        if lead.owner is None:
            raise lifecycle.NotPermitted("nobody owns this lead", move="demo")
        move(lead, Actor.person(lead.owner))

    return step


def touch(kind: str, outcome: str) -> Step:
    def step(lead: Lead) -> None:
        if lead.owner is None or lead.stage not in (Stage.MQL, Stage.SAL, Stage.SQL):
            return
        lifecycle.log_touch(lead, actor=Actor.person(lead.owner), kind=kind, outcome=outcome)

    return step
