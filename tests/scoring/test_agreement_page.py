"""Issue 18: the agreement in force as one page every signed-in user reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from reports.models import QuarterlyTarget
from sla.models import SlaPolicy
from sla.services import install_default_policies, propose_policy_change

pytestmark = pytest.mark.django_db


def test_a_rep_reads_the_definition_sla_terms_commitment_signatures_and_review(
    client, rep, manager, active_spec_definition
):
    install_default_policies()
    today = timezone.localdate()
    QuarterlyTarget.objects.create(year=today.year, quarter=(today.month - 1) // 3 + 1, qualified_leads=120)
    client.force_login(rep)
    page = client.get("/agreement/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Version {active_spec_definition.version} “FY27 Q1”" in html
    assert "Fit score at least 50 and behaviour score at least 40" in html
    assert "Decision maker" in html and "Free mail" in html and "Webinar" in html
    assert "MQL: accept or reject within 2 business days" in html and "16 business hours" in html
    assert "<strong>120</strong> qualified leads" in html
    assert "Marketing: <strong>marketer</strong>" in html and "Sales: <strong>manager</strong>" in html
    assert active_spec_definition.review_by.strftime("%-d %b %Y") in html


def test_a_proposed_sla_change_is_listed_apart_and_not_as_in_force(client, rep, manager, active_spec_definition):
    install_default_policies()
    policy = SlaPolicy.objects.get(clock="mql_decision")
    propose_policy_change(policy=policy, terms={"duration_hours": 40.0}, by=manager)
    client.force_login(rep)
    html = client.get("/agreement/").content.decode()
    assert "16 business hours" in html and "40 business hours" not in html
    assert "waiting for signatures (not in force)" in html


def test_the_page_says_when_no_agreement_is_in_force(client, rep):
    client.force_login(rep)
    html = client.get("/agreement/").content.decode()
    assert "No agreement is in force yet" in html
    assert "No quarterly target set for this quarter." in html


def test_the_page_needs_a_login(client):
    response = client.get("/agreement/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_overdue_review_is_flagged(client, rep, active_spec_definition):
    active_spec_definition.review_by = timezone.localdate() - dt.timedelta(days=1)
    active_spec_definition.save(update_fields=["review_by"])
    client.force_login(rep)
    assert "(overdue)" in client.get("/agreement/").content.decode()


def test_marketing_sets_a_quarterly_target_in_the_admin(client, marketer):
    client.force_login(marketer)
    response = client.post(
        "/admin/reports/quarterlytarget/add/", {"year": "2027", "quarter": "1", "qualified_leads": "150"}
    )
    assert response.status_code == 302
    assert QuarterlyTarget.objects.get(year=2027, quarter=1, team=None).qualified_leads == 150
