"""Issue 25 in a real browser: finding a lead (search and filters, the URL round-trip, the
back button), the hand-off of an SQL to an account executive who closes it, and the inbox on a
phone-sized screen."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from leads.models import Stage, StageTransition
from tests.browser.conftest import log_in
from tests.factories import LeadFactory, add_rep, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(rep, team):
    now = timezone.now()
    leads = {}
    for n, (first, last, company, fit, due) in enumerate(
        [
            ("Ada", "Lovelace", "Analytical Engines", 82, -2),
            ("Alan", "Turing", "Enigma Labs", 60, 5),
            ("Grace", "Hopper", "Cobol Inc", 30, 30),
            ("Ada", "Byron", "Poetry Ltd", 90, 50),
        ]
    ):
        leads[last] = LeadFactory(
            first_name=first,
            last_name=last,
            company=company,
            stage=Stage.MQL,
            owner=rep,
            team=team,
            fit_score=fit,
            sla_clock="mql_decision",
            sla_due_at=now + dt.timedelta(hours=due),
            stage_entered_at=now - dt.timedelta(hours=n + 1),
        )
    return leads


def rows(page) -> list[str]:
    return [text.split("\n")[0] for text in page.locator("#results tbody tr .name").all_inner_texts()]


def test_search_and_filters_update_the_list_in_place_with_a_url_to_share_and_go_back_to(
    live_server, new_page, screenshot, manager, people
):
    page = new_page()
    log_in(page, live_server.url, "manager", next_url="/leads/")
    assert len(rows(page)) == 4
    page.fill("input[name=q]", "ada")
    expect(page.locator("#results tbody tr .name")).to_have_count(2)
    assert sorted(rows(page)) == ["Ada Byron", "Ada Lovelace"]
    assert parse_qs(urlparse(page.url).query)["q"] == ["ada"]
    page.select_option("select[name=grade]", "A")
    expect(page).to_have_url(re.compile(r"grade=A"))
    expect(page.locator("#results tbody tr .name")).to_have_count(2)
    page.select_option("select[name=sla]", "breached")
    expect(page).to_have_url(re.compile(r"sla=breached"))
    expect(page.locator("#results tbody tr .name")).to_have_count(1)
    assert rows(page) == ["Ada Lovelace"]
    shared = page.url
    screenshot(page, "day-search-filtered")

    # The URL opens the same list in a fresh browser, form filled in.
    other = new_page()
    log_in(other, live_server.url, "manager", next_url=urlparse(shared).path + "?" + urlparse(shared).query)
    assert rows(other) == ["Ada Lovelace"]
    assert other.input_value("input[name=q]") == "ada"
    assert other.input_value("select[name=sla]") == "breached"

    # Back goes to the previous filter state, results and form alike.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"sla=breached"))
    expect(page.locator("#results tbody tr .name")).to_have_count(2)
    assert sorted(rows(page)) == ["Ada Byron", "Ada Lovelace"]
    # Sorting by a header is one more URL state.
    page.click("#results th a.sort:has-text('Fit')")
    expect(page).to_have_url(re.compile(r"sort=fit"))
    expect(page.locator("#results tbody tr .name").first).to_have_text("Ada Lovelace")
    assert rows(page) == ["Ada Lovelace", "Ada Byron"]
    assert page.console_log.errors == []


def test_an_sql_is_handed_to_the_ae_who_closes_it_as_won(live_server, new_page, screenshot, rep, team):
    executive = make_user("ae1", "account_executive")
    add_rep(team, executive)
    lead = LeadFactory(
        first_name="Hedy", last_name="Lamarr", company="Spread Spectrum", stage=Stage.SAL, owner=rep, team=team
    )

    page = new_page()
    log_in(page, live_server.url, "rep1", next_url=f"/leads/{lead.pk}/")
    for key in ("budget", "authority", "need", "timeline"):
        page.check(f"#lead-panel input[name={key}][value=yes]")
    bant_form = page.locator("#lead-panel form[action$='/qualify/']")
    bant_form.locator("[name=note]").fill("Ready for a demo next week")
    bant_form.locator("button[type=submit]").click()
    page.wait_for_selector("#lead-panel .notice")
    assert "Qualified" in page.inner_text("#lead-panel .notice")
    assert StageTransition.objects.get(lead=lead, to_stage=Stage.SQL).owner == executive

    ae = new_page()
    log_in(ae, live_server.url, "ae1")
    ae.goto(f"{live_server.url}/my-sqls/")
    assert "Hedy Lamarr" in ae.inner_text("#my-sqls") and "Ready for a demo next week" in ae.inner_text("#my-sqls")
    screenshot(ae, "day-my-sqls")
    ae.click("#my-sqls a.name")
    assert "Ready for a demo next week" in ae.inner_text(".handoff")
    close = ae.locator("#lead-panel form[action$='/close/']")
    close.locator("select[name=outcome]").select_option("won")
    close.locator("input[name=amount]").fill("24000")
    close.locator("button[type=submit]").click()
    ae.wait_for_selector("#lead-panel .notice")
    assert "Closed as won" in ae.inner_text("#lead-panel .notice")
    lead.refresh_from_db()
    assert lead.stage == Stage.WON
    assert str(StageTransition.objects.get(lead=lead, to_stage=Stage.WON).amount) == "24000.00"
    assert ae.console_log.errors == []


def test_the_inbox_works_on_a_phone(live_server, browser, screenshot, rep, people):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        log_in(page, live_server.url, "rep1")
        assert page.url.endswith("/inbox/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width}px"
        assert page.locator("#results tbody tr").count() == 4
        accept = page.locator(f"#lead-row-{people['Turing'].pk} button:has-text('Accept')")
        box = accept.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.fill("input[name=q]", "turing")
        expect(page.locator("#results tbody tr")).to_have_count(1)
        page.locator(f"#lead-row-{people['Turing'].pk} button:has-text('Accept')").click()
        page.wait_for_selector(f"#lead-row-{people['Turing'].pk} .notice")
        people["Turing"].refresh_from_db()
        assert people["Turing"].stage == Stage.SAL
        screenshot(page, "day-inbox-phone")
    finally:
        context.close()
