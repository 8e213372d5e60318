"""Issue 24 in a real browser: the inbox, a lead page, the dashboard and the admin's definition
editor in Spanish and in Romanian, with their words and their number and date formats."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from leads import lifecycle
from leads.lifecycle import SYSTEM
from leads.models import Stage, UserProfile
from tests.browser.conftest import log_in
from tests.browser.test_agreement import agreement as agreement  # fixture
from tests.browser.test_pages import _history
from tests.browser.test_pages import policies as policies
from tests.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Per language: what the pages must say, and how a thousand and a decimal are written.
WORDS = {
    "es": {
        "inbox": "Bandeja de entrada",
        "waiting": "1 lead te espera, el de plazo más próximo primero.",
        "left": r"quedan (59min|1h 0min|1h)",
        "accept": "Aceptar",
        "profile": "Perfil",
        "revenue": "Facturación",
        "million": "1\u00a0234\u00a0567",  # Django's Spanish format: a non-breaking space per thousand
        "thousands": "2\u00a0500",
        "created": "de diciembre de 2025",
        "dashboard": "Panel",
        "kpi": "Aceptados (SAL)",
        "entered": "Entradas",
        "editor_save": "Guardar",
        "review_by": "31 de marzo de 2027",
        "editor_history": "Historial de firmas",
        "editor_preview": "Simular con el histórico",
        "logout": "Cerrar sesión",
    },
    "ro": {
        "inbox": "Inbox",
        "waiting": "1 lead te așteaptă, cel mai urgent primul.",
        "left": r"mai sunt (59min|1h 0min|1h)",
        "accept": "Acceptă",
        "profile": "Profil",
        "revenue": "Cifră de afaceri",
        "million": "1.234.567",
        "thousands": "2.500",
        "created": "Decembrie 2025",
        "dashboard": "Tablou de bord",
        "kpi": "Acceptate (SAL)",
        "entered": "Intrări",
        "editor_save": "Salvează",
        "review_by": "31 Martie 2027",
        "editor_history": "Istoricul semnăturilor",
        "editor_preview": "Simulare pe istoric",
        "logout": "Deconectare",
    },
}


@pytest.mark.parametrize("language", ["es", "ro"])
def test_rep_works_the_inbox_and_a_lead_page_in_their_language(
    live_server, new_page, screenshot, rep, team, policies, language
):
    words = WORDS[language]
    UserProfile.objects.create(user=rep, language=language, time_zone="Europe/Madrid")
    lead = LeadFactory(
        country="US",
        first_name="Nina",
        last_name="Newlead",
        company="Globex",
        annual_revenue=1234567,
        employees=2500,
        created_at=dt.datetime(2025, 12, 5, 10, 0, tzinfo=dt.UTC),
    )
    lifecycle.promote_to_mql(lead, actor=SYSTEM, owner=rep)

    page = new_page()
    log_in(page, live_server.url, "rep1")
    assert page.url.endswith("/inbox/")
    assert page.get_attribute("html", "lang") == language
    assert page.locator("h1").inner_text() == words["inbox"]
    assert words["waiting"] in page.locator("#result-count").inner_text()
    assert page.locator("header").get_by_role("button", name=words["logout"]).is_visible()
    row = page.locator(f"#lead-row-{lead.pk}")
    # A new MQL's nearest clock is speed to lead: an hour to the first touch.
    assert re.fullmatch(words["left"], row.locator(".sla").inner_text()), row.locator(".sla").inner_text()
    # The script keeps the countdown up to date in the same words.
    page.evaluate("document.dispatchEvent(new Event('htmx:afterSettle'))")
    assert re.fullmatch(words["left"], row.locator(".sla").inner_text())
    row.get_by_role("button", name=words["accept"]).click()
    page.wait_for_selector(f'#lead-row-{lead.pk}[data-stage="sal"]')
    screenshot(page, f"inbox-{language}")

    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    profile = page.locator("section[aria-labelledby=profile-h]")
    assert profile.locator("h2").text_content() == words["profile"]
    facts = profile.inner_text()
    assert words["revenue"] in facts and words["million"] in facts and words["thousands"] in facts
    assert words["created"] in facts
    screenshot(page, f"lead-{language}")
    assert page.console_log.errors == []


@pytest.mark.parametrize("language", ["es", "ro"])
def test_manager_dashboard_in_their_language_with_local_numbers(
    live_server, new_page, screenshot, manager, rep, team, policies, language
):
    words = WORDS[language]
    UserProfile.objects.create(user=manager, language=language)
    _history(team, rep, now=timezone.now())

    page = new_page()
    log_in(page, live_server.url, "manager")
    page.wait_for_selector("body[data-dashboard=ready]")
    assert page.locator("h1").inner_text() == words["dashboard"]
    assert words["kpi"] in page.locator("#kpis").inner_text()
    rate = page.locator('[data-kpi="mql_to_sql_rate"]').inner_text()
    assert re.fullmatch(r"\d+,\d %", rate), rate
    legend = page.evaluate(
        "() => window.Chart.getChart(document.querySelector('#chart-funnel canvas')).data.datasets[0].label"
    )
    assert legend == words["entered"]
    stages = page.evaluate("() => window.Chart.getChart(document.querySelector('#chart-funnel canvas')).data.labels")
    assert "MQL" in stages  # acronyms stay
    href = page.locator("#chart-funnel header a").get_attribute("href")
    assert f"lang={language}" in href
    screenshot(page, f"dashboard-{language}")
    assert page.console_log.errors == []


@pytest.mark.parametrize("language", ["es", "ro"])
def test_marketer_opens_the_definition_editor_in_the_admin_in_their_language(
    live_server,
    new_page,
    screenshot,
    marketer,
    agreement,
    language,
):
    words = WORDS[language]
    UserProfile.objects.create(user=marketer, language=language)
    agreement.review_by = dt.date(2027, 3, 31)
    agreement.save(update_fields=["review_by"])

    page = new_page()
    log_in(page, live_server.url, "marketer", next_url=f"/admin/scoring/qualifiedleaddefinition/{agreement.pk}/change/")
    assert page.get_attribute("html", "lang") == language
    text = page.locator("#content").inner_text()
    assert words["editor_history"] in text and words["editor_preview"] in text
    assert page.locator("input[name=_save]").get_attribute("value") == words["editor_save"]
    assert words["review_by"] in text  # the version in force is read-only: its review date as text
    screenshot(page, f"definition-editor-{language}")
    assert Stage.MQL.label  # the model's labels load in any language
