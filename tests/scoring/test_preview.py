"""Preview of a draft against history, checked against a hand-computed fixture.

Window: Monday 5 to Sunday 18 January 2026 (two ISO weeks). One `visit` is worth 10 points
without decay under both definitions; the active one needs 20 behavior, the draft 30 and also
counts `demo_request` as a hand-raiser.

| lead | events (January)          | active: first MQL  | draft: first MQL   | outcome |
|------|---------------------------|--------------------|--------------------|---------|
| A    | visit 6, 7                | 7 (week of 5)      | never              | SQL     |
| B    | visit 6, 7, 13            | 7 (week of 5)      | 13 (week of 12)    | won     |
| C    | demo_request 14           | never              | 14 (week of 12)    | —       |
| D    | visit Dec 30, Jan 2, 8    | Jan 2, before → no | 8 (week of 5)      | —       |
| E    | visit 20, 21, 22          | after the window   | after the window   | —       |
"""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import StageTransition
from scoring import definitions as definition_service
from scoring import services
from scoring.models import DefinitionState
from scoring.preview import preview
from tests.factories import EventFactory, LeadFactory

from .conftest import client_for

pytestmark = pytest.mark.django_db

VISIT = {"name": "Visit", "event_type": "visit", "points": 10, "half_life_days": None}


def at(month: int, day: int) -> dt.datetime:
    year = 2025 if month == 12 else 2026
    return dt.datetime(year, month, day, 12, tzinfo=dt.UTC)


@pytest.fixture
def definitions(marketer, manager):
    active = definition_service.create_definition(
        {
            "name": "Active",
            "fit_threshold": 0,
            "behavior_threshold": 20,
            "hand_raisers": [],
            "required_fields": ["email"],
            "behavior_rules": [VISIT],
        },
        user=marketer,
    )
    definition_service.sign_definition(active, user=marketer)
    definition_service.sign_definition(active, user=manager)
    services.activate_definition(active, user=marketer, rescore="no")
    draft = definition_service.create_definition(
        {
            "name": "Draft",
            "fit_threshold": 0,
            "behavior_threshold": 30,
            "hand_raisers": ["demo_request"],
            "required_fields": ["email"],
            "behavior_rules": [VISIT],
        },
        user=marketer,
    )
    return active, draft


@pytest.fixture
def history(db):
    leads = {name: LeadFactory(email=f"{name.lower()}@corp.example") for name in "ABCDE"}
    plan = {
        "A": [("visit", (1, 6)), ("visit", (1, 7))],
        "B": [("visit", (1, 6)), ("visit", (1, 7)), ("visit", (1, 13))],
        "C": [("demo_request", (1, 14))],
        "D": [("visit", (12, 30)), ("visit", (1, 2)), ("visit", (1, 8))],
        "E": [("visit", (1, 20)), ("visit", (1, 21)), ("visit", (1, 22))],
    }
    for name, items in plan.items():
        for kind, (month, day) in items:
            EventFactory(lead=leads[name], type=kind, occurred_at=at(month, day), properties={})
    for name, stages in {"A": ["sql"], "B": ["sql", "won"]}.items():
        for stage in stages:
            StageTransition.objects.create(lead=leads[name], from_stage="sal", to_stage=stage, actor_type="system")
    return leads


def test_preview_counts_mqls_per_week_and_their_outcomes_as_computed_by_hand(definitions, history):
    active, draft = definitions
    data = preview(draft, date_from=dt.date(2026, 1, 5), date_to=dt.date(2026, 1, 18))

    assert data["draft"] == {
        "version": draft.version,
        "name": "Draft",
        "mql": 3,
        "reached_sql": 1,
        "won": 1,
        "sql_rate": 0.3333,
        "won_rate": 0.3333,
    }
    assert data["active"] == {
        "version": active.version,
        "name": "Active",
        "mql": 2,
        "reached_sql": 2,
        "won": 1,
        "sql_rate": 1.0,
        "won_rate": 0.5,
    }
    assert data["weeks"] == [
        {"week_start": "2026-01-05", "draft": 1, "active": 2},
        {"week_start": "2026-01-12", "draft": 2, "active": 0},
    ]
    assert [lead["email"] for lead in data["newly_qualify"]["leads"]] == ["c@corp.example", "d@corp.example"]
    assert [lead["email"] for lead in data["drop_out"]["leads"]] == ["a@corp.example"]


def test_preview_endpoint_returns_the_same_numbers(marketer, definitions, history):
    _, draft = definitions
    response = client_for(marketer).get(f"/api/v1/definitions/{draft.pk}/preview/?from=2026-01-05&to=2026-01-18")
    assert response.status_code == 200
    assert response.json()["draft"]["mql"] == 3
    assert response.json()["drop_out"]["count"] == 1


def test_preview_refuses_a_bad_date_naming_the_parameter(marketer, definitions):
    _, draft = definitions
    response = client_for(marketer).get(f"/api/v1/definitions/{draft.pk}/preview/?from=5-1-2026")
    assert response.status_code == 400
    assert "from" in response.json()["fields"]


def test_preview_is_not_for_reps(rep, definitions):
    _, draft = definitions
    assert client_for(rep).get(f"/api/v1/definitions/{draft.pk}/preview/").status_code == 403
    assert draft.state == DefinitionState.DRAFT
