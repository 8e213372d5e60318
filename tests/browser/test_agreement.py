"""Issue 18 in a real browser: a rep opens the agreement from the menu; a marketer filters the
rejected MQLs by reason and reads the rep's note."""

from __future__ import annotations

import pytest

from leads import lifecycle
from leads.lifecycle import Actor
from scoring import definitions, services
from tests.browser.conftest import log_in
from tests.factories import LeadFactory
from tests.scoring.conftest import SPEC_DEFINITION

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agreement(marketer, manager):
    draft = definitions.create_definition(SPEC_DEFINITION, user=marketer)
    definitions.sign_definition(draft, user=marketer)
    definitions.sign_definition(draft, user=manager)
    return services.activate_definition(draft, user=marketer, rescore="no")


def test_a_rep_opens_the_agreement_from_the_menu(live_server, new_page, screenshot, rep, agreement):
    page = new_page()
    log_in(page, live_server.url, "rep1")
    page.get_by_role("link", name="Agreement").click()
    page.wait_for_selector("#fit-rules")
    assert "Decision maker" in page.locator("#fit-rules").inner_text()
    assert "Free mail" in page.locator("#knockouts").inner_text()
    assert "marketer" in page.locator("#signatures").inner_text()
    screenshot(page, "agreement")
    assert page.console_log.errors == []


def test_a_marketer_filters_rejected_mqls_by_reason(live_server, new_page, screenshot, marketer, rep, team, agreement):
    for reason, note in (("no_budget", "Budget frozen until Q3"), ("not_a_fit", "Students, not buyers")):
        lead = LeadFactory(country="US")
        lifecycle.promote_to_mql(lead, actor=lifecycle.SYSTEM, owner=rep)
        lead.refresh_from_db()
        lifecycle.reject(lead, actor=Actor.person(rep), reason=reason, note=note)
    page = new_page()
    log_in(page, live_server.url, "marketer")
    page.get_by_role("link", name="Rejected MQLs").click()
    page.wait_for_selector("#rejected")
    assert "Students, not buyers" in page.locator("#rejected").inner_text()
    page.select_option("#id_reason", "no_budget")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**reason=no_budget**")
    table = page.locator("#rejected").inner_text()
    assert "Budget frozen until Q3" in table and "Students, not buyers" not in table
    screenshot(page, "rejected-mqls")
    assert page.console_log.errors == []
