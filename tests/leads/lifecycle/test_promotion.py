"""Set-based promotion (`promote_batch_to_mql`) leaves what one `promote_to_mql` per lead leaves:
the same lead columns, owners in the same turns, the same audit rows and webhook outbox rows; a
lead someone else moved meanwhile is skipped, never moved twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection, transaction

from leads import lifecycle
from leads.lifecycle import SYSTEM, Actor, InvalidReason, NoteRequired, NotPermitted
from leads.models import Lead, Stage, StageTransition, TeamMembership, WebhookDelivery, WebhookSubscription
from sla.models import BusinessCalendar
from sla.services import install_default_policies
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user

pytestmark = pytest.mark.django_db

# A Tuesday, 10:00 UTC: inside the default calendar's working hours.
AT = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def policies(db):
    install_default_policies(calendar=BusinessCalendar.objects.create(name="Test UTC"))


@pytest.fixture
def teams(team, manager, policies):
    """North America (rep1, rep2, rep3 away) as the fallback, EMEA (anna, ben) for DE/FR."""
    away = make_user("rep3", "sales_rep")
    add_rep(team, away)
    TeamMembership.objects.filter(user=away).update(is_away=True)
    emea = TeamFactory(name="EMEA", territories=["DE", "FR"], manager=manager)
    add_rep(emea, make_user("anna", "sales_rep"))
    add_rep(emea, make_user("ben", "sales_rep"))
    return team, emea


def _mixed_leads() -> list[Lead]:
    countries = ["US", "DE", "US", "FR", "BR", "US", "DE", "CA", "US"]
    leads = [
        LeadFactory(
            country=country, fit_score=60 + i, behavior_score=40 + i / 2, stage=Stage.RECYCLED if i == 4 else Stage.LEAD
        )
        for i, country in enumerate(countries)
    ]
    return sorted(leads, key=lambda lead: lead.pk)


def _state(lead_ids: list[int]) -> dict[int, tuple]:
    """Everything a promotion writes, per lead, with the audit row and the webhook payload."""
    state = {}
    for lead in Lead.objects.filter(pk__in=lead_ids).select_related("owner", "team"):
        audit = StageTransition.objects.filter(lead=lead).order_by("-id").first()
        payloads = sorted(
            (
                d.event,
                d.payload["old_stage"],
                d.payload["new_stage"],
                d.payload["reason"],
                tuple(sorted(d.payload["lead"].items())),
            )
            for d in WebhookDelivery.objects.all()
            if d.payload["lead"]["id"] == lead.pk
        )
        state[lead.pk] = (
            lead.stage,
            lead.stage_entered_at,
            getattr(lead.owner, "username", None),
            getattr(lead.team, "name", None),
            lead.sla_clock,
            lead.sla_due_at,
            lead.sla_warn_at,
            lead.sla_warned_at,
            lead.first_touch_at,
            (
                audit.from_stage,
                audit.to_stage,
                audit.at,
                audit.actor_type,
                audit.actor_id,
                audit.reason,
                audit.note,
                audit.fit_score,
                audit.behavior_score,
                audit.definition_version,
                getattr(audit.owner, "username", None),
                audit.bant,
                audit.assignment,
            ),
            payloads,
        )
    return state


def _one_by_one(candidates: list[tuple[int, str]]) -> dict[int, tuple]:
    """What the single path leaves, rolled back afterwards so the batch starts from the same state."""
    with transaction.atomic():
        for lead in Lead.objects.filter(pk__in=[pk for pk, _ in candidates]).order_by("pk"):
            lifecycle.promote_to_mql(lead, actor=SYSTEM, reason=dict(candidates)[lead.pk], definition_version=7, at=AT)
        state = _state([pk for pk, _ in candidates])
        stamps = _stamps()
        transaction.set_rollback(True)
    return state, stamps


def test_batch_leaves_the_same_leads_audit_rows_owners_and_outbox_rows_as_one_call_per_lead(teams):
    WebhookSubscription.objects.create(url="https://crm.example.com/hook", events=["lead.mql"])
    leads = _mixed_leads()
    candidates = [(lead.pk, "hand_raiser" if i % 3 == 0 else "score") for i, lead in enumerate(leads)]
    single, single_stamps = _one_by_one(candidates)

    written = lifecycle.promote_batch_to_mql(candidates, actor=SYSTEM, definition_version=7, at=AT)

    assert [row.lead_id for row in written] == [lead.pk for lead in leads]
    assert _state([lead.pk for lead in leads]) == single
    owners = Counter(entry[2] for entry in single.values())
    # Six leads for North America (rep1 and rep2 in turn; rep3 is away), three for EMEA.
    assert owners == {"rep1": 3, "rep2": 3, "anna": 2, "ben": 1}
    # Within each team the reps' turns are stamped in the same order as the single path did.
    batch_stamps = _stamps()
    for team_stamps, team_single in zip(batch_stamps, single_stamps, strict=False):
        assert _turns(team_stamps) == _turns(team_single)
    assert [set(team) for team in batch_stamps] == [{"rep1", "rep2", "rep3"}, {"anna", "ben"}]
    assert batch_stamps[0]["rep3"] is None


def _stamps() -> list[dict[str, dt.datetime | None]]:
    by_team: dict[str, dict] = {}
    for team, user, stamp in TeamMembership.objects.values_list("team__name", "user__username", "last_assigned_at"):
        by_team.setdefault(team, {})[user] = stamp
    return [by_team["North America"], by_team["EMEA"]]


def _turns(stamps: dict[str, dt.datetime | None]) -> list[str]:
    return sorted((user for user in stamps if stamps[user] is not None), key=lambda user: stamps[user])


def test_next_single_promotion_continues_the_turns_the_batch_left(teams):
    leads = _mixed_leads()
    us = [lead for lead in leads if lead.country in ("US", "CA", "BR")][:3]
    lifecycle.promote_batch_to_mql([(lead.pk, "score") for lead in us], actor=SYSTEM)
    after = LeadFactory(country="US")
    lifecycle.promote_to_mql(after, actor=SYSTEM)
    owners = [Lead.objects.get(pk=lead.pk).owner.username for lead in [*us, after]]
    assert owners == ["rep1", "rep2", "rep1", "rep2"]


def test_lead_moved_by_someone_else_meanwhile_is_skipped_not_moved_twice(teams, marketer):
    first, second, third, fourth = (LeadFactory(country="US") for _ in range(4))
    lifecycle.promote_to_mql(first, actor=Actor.person(marketer), reason="manual", note="Booth visit")
    lifecycle.disqualify(first, actor=SYSTEM, reason="spam")
    lifecycle.promote_to_mql(second, actor=SYSTEM)
    before = {
        lead.pk: list(StageTransition.objects.filter(lead=lead).values_list("id", flat=True))
        for lead in (first, second)
    }

    written = lifecycle.promote_batch_to_mql(
        [(first.pk, "score"), (second.pk, "score"), (third.pk, "score"), (fourth.pk, "hand_raiser")],
        actor=SYSTEM,
    )

    assert [row.lead_id for row in written] == [third.pk, fourth.pk]
    for lead in (first, second):
        assert list(StageTransition.objects.filter(lead=lead).values_list("id", flat=True)) == before[lead.pk]
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.stage == Stage.DISQUALIFIED and second.stage == Stage.MQL
    assert StageTransition.objects.filter(lead=second, to_stage=Stage.MQL).count() == 1
    # The skipped leads used no turn: third and fourth went to the next two reps.
    assert {Lead.objects.get(pk=third.pk).owner.username, Lead.objects.get(pk=fourth.pk).owner.username} == {
        "rep1",
        "rep2",
    }


def test_batch_without_stage_changed_batch_receivers_sends_stage_changed_per_lead(teams):
    from leads import webhooks as receivers
    from leads.signals import stage_changed, stage_changed_batch

    leads = _mixed_leads()[:3]
    seen = []

    def receiver(sender, transition, lead, **kwargs):
        seen.append((lead.pk, transition.from_stage, transition.to_stage, lead.stage, lead.owner.username))

    stage_changed_batch.disconnect(dispatch_uid="leads.webhooks.batch_to_outbox")
    stage_changed.connect(receiver)
    try:
        lifecycle.promote_batch_to_mql([(lead.pk, "score") for lead in leads], actor=SYSTEM)
    finally:
        stage_changed.disconnect(receiver)
        stage_changed_batch.connect(receivers.batch_to_outbox, dispatch_uid="leads.webhooks.batch_to_outbox")
    assert [(pk, old, new, stage) for pk, old, new, stage, _ in seen] == [
        (lead.pk, lead.stage, Stage.MQL, Stage.MQL) for lead in leads
    ]
    assert all(owner for *_, owner in seen)


def test_batch_checks_reasons_notes_and_who_may_promote(teams, marketer, rep):
    lead = LeadFactory()
    with pytest.raises(InvalidReason):
        lifecycle.promote_batch_to_mql([(lead.pk, "because")], actor=SYSTEM)
    with pytest.raises(NoteRequired):
        lifecycle.promote_batch_to_mql([(lead.pk, "manual")], actor=Actor.person(marketer))
    with pytest.raises(NotPermitted):
        lifecycle.promote_batch_to_mql([(lead.pk, "manual")], actor=Actor.person(rep), note="x")
    lead.refresh_from_db()
    assert lead.stage == Stage.LEAD and not StageTransition.objects.filter(lead=lead).exists()

    [row] = lifecycle.promote_batch_to_mql([(lead.pk, "manual")], actor=Actor.person(marketer), note="Met at the booth")
    assert (row.actor_type, row.actor, row.note, row.reason) == ("user", marketer, "Met at the booth", "manual")


def test_rescore_falls_back_to_one_by_one_when_the_batch_is_refused(teams, monkeypatch):
    from scoring import services

    leads = _mixed_leads()[:4]

    def refuse(*args, **kwargs):
        raise lifecycle.InvalidTransition(lead=leads[0], move="promote_to_mql", current_stage="changed")

    monkeypatch.setattr(services, "promote_batch_to_mql", refuse)
    assert services._promote([(lead.pk, "score") for lead in leads], version=None) == 4
    assert Lead.objects.filter(pk__in=[lead.pk for lead in leads], stage=Stage.MQL).count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_batches_over_the_same_leads_at_once_promote_each_lead_once_and_evenly(teams):
    leads = [LeadFactory(country="US") for _ in range(30)]
    candidates = [(lead.pk, "score") for lead in leads]
    start = threading.Barrier(2)
    results, errors = [], []

    def promote(part):
        try:
            start.wait(timeout=30)
            results.append(lifecycle.promote_batch_to_mql(part, actor=SYSTEM))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=promote, args=(part,)) for part in (candidates[:20], list(reversed(candidates[10:])))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(len(rows) for rows in results) == 30
    assert Counter(StageTransition.objects.filter(to_stage=Stage.MQL).values_list("lead_id", flat=True)) == {
        lead.pk: 1 for lead in leads
    }
    assert Counter(Lead.objects.filter(stage=Stage.MQL).values_list("owner__username", flat=True)) == {
        "rep1": 15,
        "rep2": 15,
    }
