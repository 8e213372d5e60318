"""Issue 18, point 1: a signature binds the content it signed; an edit voids it; activation
needs both sides' signatures on the content being activated; active versions are read-only."""

from __future__ import annotations

import pytest

from scoring import definitions, services
from scoring.forms import shown_value
from scoring.models import DefinitionSignature, DefinitionState, FitRule, VoidReason
from sla.models import SlaPolicy
from sla.services import install_default_policies, propose_policy_change, sign_policy_change

from .conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_draft(marketer, manager, spec_definition):
    draft = definitions.create_definition(spec_definition, user=marketer)
    definitions.sign_definition(draft, user=marketer)
    definitions.sign_definition(draft, user=manager)
    return draft


def _admin_form(draft, **overrides) -> dict:
    """The change form's POST as a browser sends it, with the draft's rules unchanged."""
    data = {
        "name": draft.name,
        "notes": draft.notes,
        "fit_threshold": str(draft.fit_threshold),
        "behavior_threshold": str(draft.behavior_threshold),
        "required_fields": '["email", "company"]',
        "hand_raisers": '["demo_request", "contact_me"]',
        "recycle_cooldown_days": str(draft.recycle_cooldown_days),
        "review_by": "",
        "_save": "Save",
    }
    for prefix, rules, fields in (
        ("fit_rules", draft.fit_rules.all(), ("name", "field", "operator", "value", "points")),
        (
            "behavior_rules",
            draft.behavior_rules.all(),
            (
                "name",
                "event_type",
                "property",
                "property_operator",
                "property_value",
                "points",
                "max_occurrences",
                "half_life_days",
            ),
        ),
        ("knockouts", draft.knockouts.all(), ("name", "field", "operator", "value")),
    ):
        rules = list(rules)
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": str(len(rules)),
                f"{prefix}-INITIAL_FORMS": str(len(rules)),
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
        for i, rule in enumerate(rules):
            data[f"{prefix}-{i}-id"] = str(rule.pk)
            data[f"{prefix}-{i}-definition"] = str(draft.pk)
            data[f"{prefix}-{i}-position"] = str(rule.position)
            for name in fields:
                value = getattr(rule, name)
                if name in ("value", "property_value"):
                    value = shown_value(value)  # typed as text in the editor
                data[f"{prefix}-{i}-{name}"] = "" if value is None else str(value)
    data.update(overrides)
    return data


def test_a_signature_records_the_hash_of_the_content_it_signed(signed_draft):
    current = definitions.content_hash(signed_draft)
    rows = DefinitionSignature.objects.filter(definition=signed_draft)
    assert sorted(rows.values_list("side", flat=True)) == ["marketing", "sales"]
    assert set(rows.values_list("content_hash", flat=True)) == {current}
    assert definitions.missing_signatures(signed_draft) == []


def test_editing_a_signed_draft_threshold_in_the_admin_voids_both_signatures(client, marketer, manager, signed_draft):
    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{signed_draft.pk}/change/"
    response = client.post(url, _admin_form(signed_draft, fit_threshold="5"), follow=True)
    assert response.status_code == 200
    assert "signature(s) voided" in response.content.decode()

    signed_draft.refresh_from_db()
    assert signed_draft.fit_threshold == 5
    assert signed_draft.marketing_signed_by is None and signed_draft.sales_signed_by is None
    voided = DefinitionSignature.objects.filter(definition=signed_draft)
    assert voided.count() == 2
    assert all(s.voided_at and s.voided_by == marketer and s.void_reason == VoidReason.EDITED for s in voided)

    refused = client_for(marketer).post(f"/api/v1/definitions/{signed_draft.pk}/activate/")
    assert refused.status_code == 409 and refused.json()["code"] == "signoff_missing"
    assert "marketing and sales manager" in refused.json()["detail"]
    signed_draft.refresh_from_db()
    assert signed_draft.state == DefinitionState.DRAFT

    page = client.get(url).content.decode()
    assert "voided by edit" in page  # the history keeps the voided signatures


def test_saving_the_admin_form_unchanged_keeps_the_signatures(client, marketer, signed_draft):
    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{signed_draft.pk}/change/"
    client.post(url, _admin_form(signed_draft), follow=True)
    assert definitions.missing_signatures(signed_draft) == []


def test_api_patch_of_a_signed_draft_voids_its_signatures(marketer, signed_draft):
    response = client_for(marketer).patch(
        f"/api/v1/definitions/{signed_draft.pk}/", {"fit_threshold": 5}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fit_threshold"] == 5
    assert body["marketing_signed_by"] is None and body["sales_signed_by"] is None
    assert [s["void_reason"] for s in body["signatures"]] == ["edited", "edited"]
    assert all(s["voided_by"] == "marketer" for s in body["signatures"])


def test_two_signatures_on_an_older_hash_cannot_activate(marketer, signed_draft):
    # An edit that went around every edit path (a raw UPDATE): the signatures are still standing
    # but were given to other content, and activation looks at the hash, not at the flags.
    FitRule.objects.filter(definition=signed_draft).update(points=99)
    assert DefinitionSignature.objects.filter(definition=signed_draft, voided_at__isnull=True).count() == 2
    with pytest.raises(definitions.DefinitionError) as refused:
        services.activate_definition(signed_draft, user=marketer, rescore="no")
    assert refused.value.code == "signoff_missing"
    assert "missing: marketing and sales manager" in refused.value.message
    signed_draft.refresh_from_db()
    assert signed_draft.state == DefinitionState.DRAFT


def test_signing_again_after_an_edit_lets_the_new_content_activate(marketer, manager, signed_draft):
    definitions.update_definition(signed_draft, {"behavior_threshold": 35}, user=marketer)
    definitions.sign_definition(signed_draft, user=marketer)
    assert definitions.missing_signatures(signed_draft) == ["sales manager"]
    definitions.sign_definition(signed_draft, user=manager)
    active = services.activate_definition(signed_draft, user=manager, rescore="no")
    assert active.state == DefinitionState.ACTIVE and active.behavior_threshold == 35


def test_sla_terms_are_part_of_the_signed_content(marketer, manager, spec_definition):
    install_default_policies()
    draft = definitions.create_definition(spec_definition, user=marketer)
    definitions.sign_definition(draft, user=marketer)
    definitions.sign_definition(draft, user=manager)
    policy = SlaPolicy.objects.get(clock="mql_decision")
    change = propose_policy_change(policy=policy, terms={"duration_hours": 40.0}, by=manager)
    assert change is not None
    assert definitions.missing_signatures(draft) == []  # a proposal changes nothing in force
    sign_policy_change(change, by=manager)
    sign_policy_change(change, by=marketer)
    assert definitions.missing_signatures(draft) == ["marketing", "sales manager"]


def test_an_active_definition_is_read_only_in_the_api_and_the_admin(client, marketer, active_spec_definition):
    response = client_for(marketer).patch(
        f"/api/v1/definitions/{active_spec_definition.pk}/", {"fit_threshold": 5}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "not_a_draft"
    assert "copy it to a new draft" in response.json()["detail"]

    client.force_login(marketer)
    url = f"/admin/scoring/qualifiedleaddefinition/{active_spec_definition.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="fit_threshold"' not in page  # shown, not editable
    client.post(url, _admin_form(active_spec_definition, fit_threshold="5"))
    active_spec_definition.refresh_from_db()
    assert active_spec_definition.fit_threshold == 50
