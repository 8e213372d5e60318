"""Suggesting a definition from won and lost leads (issue 23), on generated leads whose true
model is known (scoring.synthetic)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from leads.models import Lead, Stage
from scoring import learn
from scoring.models import QualifiedLeadDefinition
from scoring.synthetic import generate
from tests.scoring.conftest import client_for

SUGGEST_URL = "/api/v1/definitions/suggest/"


@pytest.fixture(scope="module")
def history():
    leads = generate(3000, seed=7)
    return leads, learn.learn([lead.facts for lead in leads], [lead.won for lead in leads])


def _points(suggestion, field, value):
    return sum(
        rule["points"]
        for rule in suggestion.fit_rules
        if rule["field"] == field and rule["operator"] == "in" and value in rule["value"]
    )


def test_suggestion_recovers_the_direction_of_the_true_model(history):
    _, suggestion = history
    sources = {s: _points(suggestion, "source", s) for s in ("referral", "web", "paid_search", "content")}
    assert sources["referral"] > 0 and sources["referral"] == max(sources.values())
    assert sources["content"] < 0
    assert _points(suggestion, "country", "US") > 0 > _points(suggestion, "country", "IN")
    words = {rule["value"]: rule["points"] for rule in suggestion.fit_rules if rule["field"] == "job_title"}
    assert words[r"(?i)\bvp\b"] > 0 > words[r"(?i)\bintern\b"]
    visits = sorted(
        (rule for rule in suggestion.fit_rules if rule["field"] == "visits"),
        key=lambda rule: rule["value"][0] if isinstance(rule["value"], list) else rule["value"],
    )
    assert visits[-1]["operator"] == "gte" and visits[-1]["points"] == max(r["points"] for r in visits)


def test_suggestion_ranks_held_out_leads_near_the_true_model(history):
    leads, suggestion = history
    outcomes = np.array([int(lead.won) for lead in leads])
    _, test = train_test_split(
        np.arange(len(leads)), test_size=learn.HELD_OUT_SHARE, stratify=outcomes, random_state=learn.SEED
    )
    best = roc_auc_score(outcomes[test], [leads[i].true_logit for i in test])
    assert suggestion.validation["held_out"] == len(test)
    assert suggestion.validation["suggestion"]["auc"] >= best - 0.03


def test_scores_spread_without_piling_at_the_clamp_and_threshold_meets_the_target(history):
    _, suggestion = history
    figures = suggestion.validation["suggestion"]
    assert figures["at_0"] < 0.03 and figures["at_100"] < 0.03
    assert abs(figures["mql_rate"] - learn.DEFAULT_TARGET_MQL_RATE) < 0.04
    deciles = figures["lift_by_decile"]
    assert deciles[0]["lift"] > 2 > 0.5 > deciles[-1]["lift"]


def test_every_rule_carries_its_evidence(history):
    _, suggestion = history
    for rule in suggestion.fit_rules:
        evidence = rule["evidence"]
        assert evidence["matched"] >= evidence["won"] >= 0
        low, high = evidence["ci95"]
        assert low <= evidence["won_rate"] <= high
        assert rule["points"] == int(rule["points"]) and rule["points"] != 0


def test_fields_without_variation_are_skipped_and_listed():
    leads = generate(600, seed=3)
    rows = [{**lead.facts, "attributes": {**lead.facts["attributes"], "plan": "free"}} for lead in leads]
    suggestion = learn.learn(rows, [lead.won for lead in leads], fields=["source", "plan", "nowhere"])
    assert {"field": "plan", "reason": "no_variation"} in suggestion.skipped
    assert {"field": "nowhere", "reason": "no_data"} in suggestion.skipped
    assert {rule["field"] for rule in suggestion.fit_rules} == {"source"}


# --- Through the API and the command ------------------------------------------------------


def _store(leads) -> None:
    stages = (Stage.LOST, Stage.DISQUALIFIED)
    Lead.objects.bulk_create(
        Lead(email=f"h{i}@example.com", stage=Stage.WON if lead.won else stages[i % 2], **lead.facts)
        for i, lead in enumerate(leads)
    )


@pytest.fixture
def stored_history(db):
    _store(generate(500, seed=11))


def test_marketer_gets_an_unsigned_draft_whose_rules_round_trip(stored_history, marketer, active_spec_definition):
    client = client_for(marketer)
    response = client.post(SUGGEST_URL, {"name": "From customers", "target_mql_rate": 0.25}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "draft" and body["name"] == "From customers"
    assert body["fit_rules"] and all("evidence" in rule for rule in body["fit_rules"])
    assert body["validation"]["suggestion"]["auc"] > 0.7
    assert body["validation"]["active"]["version"] == active_spec_definition.version
    # Behaviour rules and knockouts come from the active definition: the suggestion is about fit.
    assert [rule["name"] for rule in body["knockouts"]] == ["Free mail"]
    assert [rule["name"] for rule in body["behavior_rules"]] == ["Pricing page", "Webinar"]
    again = client.get(f"/api/v1/definitions/{body['id']}/").json()
    assert again["fit_rules"] == body["fit_rules"] and again["fit_threshold"] == body["fit_threshold"]
    assert client.get(f"/api/v1/definitions/{body['id']}/preview/").status_code == 200
    refused = client.post(f"/api/v1/definitions/{body['id']}/activate/")
    assert refused.status_code == 409 and refused.json()["code"] == "signoff_missing"


def test_too_little_history_is_a_400_saying_how_many_are_needed(db, marketer):
    _store([lead for lead in generate(400, seed=5) if lead.won][:30] + generate(40, seed=6))
    response = client_for(marketer).post(SUGGEST_URL, {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "too_little_history"
    assert body["fields"]["history"]["needed"] == 50 and body["fields"]["history"]["won"] < 50
    assert "50" in body["detail"]
    assert not QualifiedLeadDefinition.objects.exists()


def test_bad_suggest_options_name_the_field(db, marketer):
    client = client_for(marketer)
    for body, name in (
        ({"target_mql_rate": 2}, "target_mql_rate"),
        ({"fields": "country"}, "fields"),
        ({"period": {"from": "yesterday"}}, "period.from"),
    ):
        response = client.post(SUGGEST_URL, body, format="json")
        assert response.status_code == 400 and name in response.json()["fields"], body


def test_without_scikit_learn_the_endpoint_says_how_to_install_it(stored_history, marketer, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    response = client_for(marketer).post(SUGGEST_URL, {}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "suggest_unavailable" and "leadflow[suggest]" in response.json()["detail"]


def test_command_prints_the_draft_and_its_held_out_figures(stored_history, capsys):
    call_command("suggest_definition", "--fields", "source,country,job_title,visits")
    out = capsys.readouterr().out
    draft = QualifiedLeadDefinition.objects.get()
    assert f"Draft id {draft.pk}" in out and "AUC" in out and "lift by score decile" in out
    assert {rule.field for rule in draft.fit_rules.all()} <= {"source", "country", "job_title", "visits"}


def test_command_says_when_history_is_too_short(db):
    with pytest.raises(CommandError, match="at least 50 won"):
        call_command("suggest_definition")


def test_generated_history_is_seeded_and_has_a_learnable_signal():
    first, again, other = generate(2000, seed=1), generate(2000, seed=1), generate(2000, seed=2)
    assert first == again and first != other
    won = [lead.won for lead in first]
    assert 0.12 < sum(won) / len(won) < 0.3
    assert 0.82 < roc_auc_score(won, [lead.true_logit for lead in first]) < 0.9


def test_admin_action_suggests_a_draft_and_its_page_shows_the_rules(stored_history, client, marketer):
    client.force_login(marketer)
    response = client.post(
        "/admin/scoring/qualifiedleaddefinition/",
        {"action": "suggest_from_customers", "_selected_action": [0]},
        follow=True,
    )
    draft = QualifiedLeadDefinition.objects.get()
    assert f"Draft v{draft.version} suggested" in response.content.decode()
    rule = draft.fit_rules.first()
    page = client.get(f"/admin/scoring/qualifiedleaddefinition/{draft.pk}/change/").content.decode()
    assert rule.name in page and "matched" in page


def test_odd_attribute_values_never_make_a_500(db, marketer):
    leads = generate(500, seed=13)
    for i, lead in enumerate(leads):
        lead.facts["attributes"].update(
            {"tags": ["a", str(i % 3)], "meta": {"x": i % 2}, "flag": i % 2 == 0, "k" * 150: i, "visits": "n/a"}
        )
    _store(leads)
    response = client_for(marketer).post(SUGGEST_URL, {}, format="json")
    assert response.status_code == 201, response.content
    assert {"field": "k" * 150, "reason": "name_too_long"} in response.json()["skipped"]


def test_only_unusable_fields_is_a_400_listing_them(stored_history, marketer):
    response = client_for(marketer).post(SUGGEST_URL, {"fields": ["nowhere", "email"]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "no_usable_fields"
    assert response.json()["fields"]["fields"] == ["nowhere", "email"]
    assert not QualifiedLeadDefinition.objects.exists()
