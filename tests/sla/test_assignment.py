"""Round-robin assignment on MQL entry: territory, away reps, fairness, even under concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from leads import lifecycle
from leads.models import Lead, StageTransition
from tests.factories import LeadFactory, TeamFactory, add_rep, make_user

from .conftest import make_mql


@pytest.mark.django_db
def test_round_robin_alternates_between_reps_and_records_the_decision(team, policies):
    owners = [make_mql().owner.username for _ in range(4)]
    assert owners == ["rep1", "rep2", "rep1", "rep2"]
    decision = StageTransition.objects.filter(to_stage="mql").last().assignment
    assert decision["method"] == "round_robin" and decision["team"] == "North America"
    assert decision["owner"] == "rep2"


@pytest.mark.django_db
def test_reps_marked_away_are_skipped_and_named_in_the_decision(team, rep, policies):
    team.memberships.filter(user=rep).update(is_away=True)
    leads = [make_mql() for _ in range(3)]
    assert {lead.owner.username for lead in leads} == {"rep2"}
    assert StageTransition.objects.filter(to_stage="mql").last().assignment["skipped_away"] == ["rep1"]


@pytest.mark.django_db
def test_lead_goes_to_the_team_that_owns_its_country_else_the_fallback(team, policies, manager):
    emea = TeamFactory(name="EMEA", territories=["DE", "FR"], manager=manager)
    add_rep(emea, make_user("anna", "sales_rep"))
    german = make_mql(country="DE")
    brazilian = make_mql(country="BR")
    assert (german.team.name, german.owner.username) == ("EMEA", "anna")
    assert brazilian.team.name == "North America"


@pytest.mark.django_db
def test_team_with_everyone_away_leaves_the_mql_unassigned_for_the_team(team, policies):
    team.memberships.update(is_away=True)
    lead = make_mql()
    assert lead.owner is None and lead.team == team
    assert "no available rep" in StageTransition.objects.filter(lead=lead).last().assignment["result"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_mqls_promoted_at_the_same_moment_are_spread_evenly(team, policies):
    add_rep(team, make_user("rep3", "sales_rep"))
    leads = [LeadFactory() for _ in range(12)]
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def promote(chunk):
        try:
            start.wait(timeout=30)
            for lead in chunk:
                lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises  # reported in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(leads[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = Counter(Lead.objects.filter(stage="mql").values_list("owner__username", flat=True))
    assert counts == {"rep1": 4, "rep2": 4, "rep3": 4}
