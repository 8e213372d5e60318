"""A lost accept race (issue 22 point 6): the teammate who loses gets 409 with the stage the
lead is in now, not 404, while leads of other teams stay hidden (404)."""

from __future__ import annotations

import pytest

from leads.models import Stage
from tests.factories import LeadFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("move", ["accept", "reject"])
def test_the_teammate_who_loses_gets_409_with_the_current_stage(as_rep, as_rep2, team, move):
    lead = LeadFactory(stage=Stage.MQL, owner=None, team=team)
    won = as_rep.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json")
    assert won.status_code == 200, won.content

    body = {"reason": "not_a_fit"} if move == "reject" else {}
    lost = as_rep2.post(f"/api/v1/leads/{lead.pk}/{move}/", body, format="json")
    assert lost.status_code == 409, lost.content
    assert lost.json()["code"] == "invalid_transition"
    assert lost.json()["current_stage"] == "sal"


def test_a_lead_of_another_team_stays_a_404(as_rep2, manager):
    other = TeamFactory(name="EMEA", territories=["DE"])
    lead = LeadFactory(stage=Stage.SAL, owner=manager, team=other)
    response = as_rep2.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json")
    assert response.status_code == 404
    assert "current_stage" not in response.json()


def test_other_moves_on_an_invisible_lead_stay_404(as_rep, as_rep2, team):
    lead = LeadFactory(stage=Stage.MQL, owner=None, team=team)
    assert as_rep.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json").status_code == 200
    assert as_rep2.get(f"/api/v1/leads/{lead.pk}/").status_code == 404


@pytest.mark.postgres
def test_two_teammates_racing_on_postgres_get_one_200_and_one_409(transactional_db, team, rep, rep2):
    import threading

    from django.db import connection

    from tests.api.conftest import client_for

    lead = LeadFactory(stage=Stage.MQL, owner=None, team=team)
    clients = [client_for(user) for user in (rep, rep2, rep, rep2)]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def accept(client) -> None:
        barrier.wait()
        try:
            statuses.append(client.post(f"/api/v1/leads/{lead.pk}/accept/", {}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
