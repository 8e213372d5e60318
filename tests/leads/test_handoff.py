"""SQLs go to account executives (issue 25): the hand-off on qualification, "my SQLs", and
won/lost with amount and reason, through the lifecycle like every other move."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from leads import lifecycle
from leads.lifecycle import Actor, InvalidReason, NotPermitted
from leads.models import Lead, Stage, StageTransition
from tests.api.conftest import client_for
from tests.factories import LeadFactory, add_rep, make_user

pytestmark = pytest.mark.django_db

YES = {key: {"value": True, "note": f"{key} confirmed"} for key in lifecycle.BANT_KEYS}


@pytest.fixture
def executives(team, executive):
    second = make_user("ae2", "account_executive")
    add_rep(team, executive)
    add_rep(team, second)
    return executive, second


def sal_of(rep, team) -> Lead:
    return LeadFactory(stage=Stage.SAL, owner=rep, team=team)


def test_qualifying_hands_the_sql_to_the_teams_aes_in_turn_with_the_note_and_bant(rep, team, executives):
    first, second = executives
    owners = []
    for _ in range(3):
        lead = sal_of(rep, team)
        lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES, note="Wants a demo for 40 seats")
        owners.append(Lead.objects.get(pk=lead.pk).owner.username)
    assert owners == [first.username, second.username, first.username]
    handoff = StageTransition.objects.filter(lead=lead, to_stage=Stage.SQL).get()
    assert handoff.note == "Wants a demo for 40 seats"
    assert handoff.bant["budget"] == {"value": True, "note": "budget confirmed"}
    assert handoff.actor == rep and handoff.owner == first
    assert handoff.assignment["previous_owner"] == rep.username


def test_an_away_ae_is_skipped(rep, team, executives):
    first, second = executives
    team.memberships.filter(user=first).update(is_away=True)
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    assert Lead.objects.get(pk=lead.pk).owner == second
    assert StageTransition.objects.get(lead=lead, to_stage=Stage.SQL).assignment["skipped_away"] == [first.username]


def test_without_an_available_ae_the_sql_stays_with_its_rep(rep, team):
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    assert Lead.objects.get(pk=lead.pk).owner == rep


def test_new_mqls_never_go_round_robin_to_an_ae(rep, rep2, team, executives):
    owners = set()
    for _ in range(6):
        lead = LeadFactory(team=team)
        lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, reason="manual")
        owners.add(Lead.objects.get(pk=lead.pk).owner.username)
    assert owners == {rep.username, rep2.username}


def test_the_ae_sees_my_sqls_with_the_hand_off_and_records_a_win_with_its_amount(client, rep, team, executives):
    first, _second = executives
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES, note="Budget signed off by the CFO")
    client.force_login(first)
    page = client.get(reverse("my-sqls")).content.decode()
    assert lead.full_name in page and "Budget signed off by the CFO" in page
    detail = client.get(reverse("lead-detail", args=[lead.pk])).content.decode()
    assert "Hand-off" in detail and "budget confirmed" in detail
    response = client.post(reverse("lead-close", args=[lead.pk]), {"outcome": "won", "amount": "12500.00"})
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.stage == Stage.WON
    won = StageTransition.objects.get(lead=lead, to_stage=Stage.WON)
    assert won.amount == Decimal("12500.00") and won.actor == first and won.reason == "won"
    assert "Recently closed" in client.get(reverse("my-sqls")).content.decode()


def test_a_loss_needs_a_reason(client, rep, team, executives):
    first, _ = executives
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    client.force_login(first)
    refused = client.post(
        reverse("lead-close", args=[lead.pk]), {"outcome": "lost", "amount": "900"}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 400 and "Say why the deal was lost" in refused.content.decode()
    client.post(reverse("lead-close", args=[lead.pk]), {"outcome": "lost", "amount": "900", "reason": "price"})
    lost = StageTransition.objects.get(lead=lead, to_stage=Stage.LOST)
    assert lost.reason == "price" and lost.amount == Decimal("900")


def test_an_ae_cannot_see_or_close_another_aes_sql(client, rep, team, executives):
    first, second = executives
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    assert Lead.objects.get(pk=lead.pk).owner == first
    client.force_login(second)
    assert client.get(reverse("lead-detail", args=[lead.pk])).status_code == 404
    with pytest.raises(NotPermitted):
        lifecycle.close(Lead.objects.get(pk=lead.pk), actor=Actor.person(second), outcome="won")
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SQL


def test_the_crm_still_reports_outcomes_through_the_api_with_amount_and_reason(rep, team, manager, executives):
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    api = client_for(manager)
    bad = api.post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "lost", "reason": "weather"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()["fields"]
    ok = api.post(
        f"/api/v1/leads/{lead.pk}/close/", {"outcome": "lost", "reason": "competitor", "amount": "5000"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["stage"] == "lost"
    assert StageTransition.objects.get(lead=lead, to_stage=Stage.LOST).amount == Decimal("5000")
    # The old body (outcome alone) still works.
    other = sal_of(rep, team)
    lifecycle.qualify(other, actor=Actor.person(rep), bant=YES)
    assert api.post(f"/api/v1/leads/{other.pk}/close/", {"outcome": "won"}, format="json").status_code == 200


def test_the_ae_closes_their_own_sql_through_the_api(rep, team, executives):
    first, _ = executives
    lead = sal_of(rep, team)
    lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    response = client_for(first).post(f"/api/v1/leads/{lead.pk}/close/", {"outcome": "won"}, format="json")
    assert response.status_code == 200


def test_a_negative_amount_is_refused(rep, team, manager):
    lead = LeadFactory(stage=Stage.SQL, owner=rep, team=team)
    with pytest.raises(InvalidReason):
        lifecycle.close(lead, actor=Actor.person(manager), outcome="won", amount=Decimal("-1"))


def test_my_sqls_shows_the_first_meeting_clock_of_the_hand_off(client, rep, team, executives):
    import datetime as dt

    from django.utils import timezone

    from leads.selectors import ae_meeting_clocks

    first, _ = executives
    met, waiting, late = (sal_of(rep, team) for _ in range(3))
    for lead in (met, waiting, late):
        lifecycle.qualify(lead, actor=Actor.person(rep), bant=YES)
    Lead.objects.filter(pk=late.pk).update(stage_entered_at=timezone.now() - dt.timedelta(days=10))
    lifecycle.log_touch(Lead.objects.get(pk=met.pk), actor=Actor.person(first), kind="meeting", outcome="connected")
    clocks = ae_meeting_clocks(list(Lead.objects.filter(pk__in=[met.pk, waiting.pk, late.pk])))
    assert (clocks[met.pk].state, clocks[waiting.pk].state, clocks[late.pk].state) == ("met", "running", "breached")
    client.force_login(first)
    page = client.get(reverse("my-sqls")).content.decode()
    assert "First meeting (3 business days)" in page and "held" in page and "overdue" in page
