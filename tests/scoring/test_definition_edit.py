"""Issue 18, point 2: drafts are edited through the API (PATCH) and the admin with the same
validation: an unknown lead field, a bad regex or a bad value for an operator is refused with
the rule and field named, never saved as a silent typo."""

from __future__ import annotations

import pytest

from scoring import definitions
from tests.factories import LeadFactory

from .conftest import client_for
from .test_signatures import _admin_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(marketer, spec_definition):
    return definitions.create_definition(spec_definition, user=marketer)


def _patch(user, draft, body):
    return client_for(user).patch(f"/api/v1/definitions/{draft.pk}/", body, format="json")


def test_marketer_patches_a_draft_threshold_and_replaces_its_fit_rules(marketer, draft):
    response = _patch(
        marketer,
        draft,
        {
            "behavior_threshold": 30,
            "fit_rules": [{"name": "Big", "field": "employees", "operator": "gte", "value": 1000, "points": 40}],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["behavior_threshold"] == 30
    assert [rule["name"] for rule in body["fit_rules"]] == ["Big"]
    assert [rule["name"] for rule in body["knockouts"]] == ["Free mail"]  # lists not given stay


@pytest.mark.parametrize(
    ("rules", "field", "words"),
    [
        (
            {"fit_rules": [{"name": "Size", "field": "emplyees", "operator": "gte", "value": 100, "points": 5}]},
            "fit_rules[0].field",
            "Unknown lead field 'emplyees'",
        ),
        (
            {"knockouts": [{"name": "Free mail", "field": "email", "operator": "regex", "value": "@(gmail"}]},
            "knockouts[0].value",
            "does not compile",
        ),
        (
            {
                "fit_rules": [
                    {"name": "Ok", "field": "job_title", "operator": "contains", "value": "vp", "points": 5},
                    {"name": "Size", "field": "employees", "operator": "between", "value": [500], "points": 5},
                ]
            },
            "fit_rules[1].value",
            "two numbers",
        ),
    ],
)
def test_patch_with_a_bad_rule_is_a_400_naming_the_rule_and_field(marketer, draft, rules, field, words):
    before = definitions.definition_to_dict(draft)
    response = _patch(marketer, draft, rules)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert words in " ".join(body["fields"][field])
    draft.refresh_from_db()
    assert definitions.definition_to_dict(draft) == before  # nothing written


def test_a_key_leads_carry_in_attributes_is_a_known_field(marketer, draft):
    LeadFactory(attributes={"crm": "salesforce"})
    response = _patch(
        marketer,
        draft,
        {"fit_rules": [{"name": "SFDC", "field": "crm", "operator": "equals", "value": "salesforce", "points": 5}]},
    )
    assert response.status_code == 200


def test_sales_manager_cannot_edit_a_draft(manager, draft):
    response = _patch(manager, draft, {"fit_threshold": 10})
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.fit_threshold == 50


def test_admin_refuses_a_rule_on_an_unknown_field_and_offers_the_lead_columns(client, marketer, draft):
    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{draft.pk}/change/"
    page = client.get(url).content.decode()
    assert '<datalist id="lead-field-choices">' in page and '<option value="employees">' in page
    response = client.post(url, _admin_form(draft, **{"fit_rules-0-field": "emplyees"}))
    assert response.status_code == 200
    assert "Unknown lead field &#x27;emplyees&#x27;" in response.content.decode()
    assert draft.fit_rules.get(position=0).field == "employees"


@pytest.mark.parametrize(
    ("operator", "typed", "stored"),
    [
        ("gte", "250", 250),
        ("in", "US, CA", ["US", "CA"]),
        ("between", "100, 1000", [100, 1000]),
        ("regex", "(?i)\\bvp\\b", "(?i)\\bvp\\b"),
        ("equals", "Software", "Software"),
    ],
)
def test_admin_rule_values_are_typed_as_text_not_json(client, marketer, draft, operator, typed, stored):
    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{draft.pk}/change/"
    field = "job_title" if operator in ("regex", "equals", "in") else "employees"
    form = _admin_form(
        draft, **{"fit_rules-0-field": field, "fit_rules-0-operator": operator, "fit_rules-0-value": typed}
    )
    assert client.post(url, form).status_code == 302
    assert draft.fit_rules.get(position=0).value == stored


def test_admin_value_that_does_not_fit_the_operator_is_refused_on_the_value(client, marketer, draft):
    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{draft.pk}/change/"
    response = client.post(url, _admin_form(draft, **{"fit_rules-0-value": "many"}))
    assert response.status_code == 200 and "needs a number" in response.content.decode()
    assert draft.fit_rules.get(position=0).value == 100


@pytest.mark.parametrize(
    "body",
    [
        ["not", "an", "object"],
        {"fit_threshold": "high"},
        {"fit_threshold": 500},
        {"required_fields": 5},
        {"review_by": 5},
        {"review_by": "next week"},
        {"name": ""},
        {"state": "active"},
        {"fit_rules": "all"},
        {"fit_rules": [5]},
        {"fit_rules": [{"name": "x", "field": None, "operator": "gte", "value": 1, "points": 1}]},
        {"fit_rules": [{"name": "x", "field": "employees", "operator": "nope", "value": 1, "points": "a"}]},
        {"behavior_rules": [{"name": "x", "event_type": "e", "points": 1, "half_life_days": -1}]},
        {"knockouts": [{"name": "x", "field": "email", "operator": "regex", "value": 5, "colour": "red"}]},
    ],
)
def test_malformed_patch_bodies_are_400_never_500(marketer, draft, body):
    response = _patch(marketer, draft, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("review_by", ["soon", 5, ["2027-01-01"]])
def test_creating_a_draft_with_a_bad_review_date_is_a_400_naming_it(marketer, spec_definition, review_by):
    response = client_for(marketer).post(
        "/api/v1/definitions/", {**spec_definition, "review_by": review_by}, format="json"
    )
    assert response.status_code == 400
    assert "review_by" in response.json()["fields"]


@pytest.mark.parametrize(
    ("language", "words"),
    [("es", "La regex no compila"), ("ro", "Regex-ul nu se compilează")],
)
def test_a_bad_rule_is_refused_in_the_readers_language(marketer, draft, language, words):
    response = client_for(marketer).patch(
        f"/api/v1/definitions/{draft.pk}/",
        {"knockouts": [{"name": "Free mail", "field": "email", "operator": "regex", "value": "@(gmail"}]},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"  # the code stays, the words follow the reader
    assert words in " ".join(body["fields"]["knockouts[0].value"])
