from __future__ import annotations

import copy

import pytest
from rest_framework.test import APIClient

# The definition JSON of SPEC section 9, verbatim.
SPEC_DEFINITION = {
    "name": "FY27 Q1",
    "fit_threshold": 50,
    "behavior_threshold": 40,
    "required_fields": ["email", "company"],
    "hand_raisers": ["demo_request", "contact_me"],
    "recycle_cooldown_days": 30,
    "fit_rules": [
        {"name": "Mid-market or larger", "field": "employees", "operator": "gte", "value": 100, "points": 25},
        {
            "name": "Decision maker",
            "field": "job_title",
            "operator": "regex",
            "value": "(?i)\\b(vp|director|head|chief)\\b",
            "points": 30,
        },
    ],
    "behavior_rules": [
        {
            "name": "Pricing page",
            "event_type": "page_view",
            "property": "url",
            "property_operator": "contains",
            "property_value": "/pricing",
            "points": 10,
            "max_occurrences": 3,
            "half_life_days": 30,
        },
        {"name": "Webinar", "event_type": "webinar_attended", "points": 20, "max_occurrences": 2, "half_life_days": 60},
    ],
    "knockouts": [{"name": "Free mail", "field": "email", "operator": "regex", "value": "@(gmail|yahoo|hotmail)\\."}],
}


@pytest.fixture
def spec_definition() -> dict:
    return copy.deepcopy(SPEC_DEFINITION)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def active_spec_definition(db, marketer, manager, spec_definition):
    from scoring import definitions, services

    definition = definitions.create_definition(spec_definition, user=marketer)
    definitions.sign_definition(definition, user=marketer)
    definitions.sign_definition(definition, user=manager)
    return services.activate_definition(definition, user=marketer, rescore="no")
