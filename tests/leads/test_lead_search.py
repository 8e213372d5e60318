"""Finding a lead (issue 25): search and filters on the inbox and the "all leads" list, scoped
by role, as plain pages and as htmx fragments of the same URL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.filters import LeadListFilter, grade_range
from leads.models import Lead, Stage
from tests.factories import LeadFactory, TeamFactory, make_user

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [row["lead"].last_name for row in response.context["rows"]]


@pytest.fixture
def people(team, rep, rep2):
    now = timezone.now()
    return {
        "ana": LeadFactory(
            first_name="Ana",
            last_name="Lovelace",
            company="Analytical Engines",
            email="ana@engines.example",
            external_id="CRM-0042",
            stage=Stage.MQL,
            owner=rep,
            team=team,
            fit_score=80,
            country="US",
            source="webinar",
            sla_due_at=now + dt.timedelta(hours=2),
        ),
        "bob": LeadFactory(
            first_name="Bob",
            last_name="Babbage",
            company="Difference Ltd",
            email="bob@difference.example",
            stage=Stage.SAL,
            owner=rep,
            team=team,
            fit_score=30,
            country="CA",
            source="ads",
            sla_due_at=now - dt.timedelta(hours=1),
        ),
        "cy": LeadFactory(
            first_name="Cy",
            last_name="Hopper",
            company="Cobol Inc",
            email="cy@cobol.example",
            stage=Stage.MQL,
            owner=rep2,
            team=team,
            fit_score=55,
            country="US",
            source="webinar",
            sla_due_at=now + dt.timedelta(days=3),
        ),
        "dee": LeadFactory(
            first_name="Dee",
            last_name="Turing",
            company="Enigma Labs",
            email="dee@enigma.example",
            stage=Stage.LEAD,
            fit_score=10,
            country="GB",
            source="seo",
        ),
    }


def test_a_manager_finds_a_lead_by_name_company_email_or_external_id(client, manager, people):
    client.force_login(manager)
    url = reverse("lead-list")
    assert names(client.get(url, {"q": "lovelace"})) == ["Lovelace"]
    assert names(client.get(url, {"q": "difference"})) == ["Babbage"]
    assert names(client.get(url, {"q": "cy@cobol"})) == ["Hopper"]
    assert names(client.get(url, {"q": "crm-0042"})) == ["Lovelace"]
    # Every word must match some column: a first name and a company together.
    assert names(client.get(url, {"q": "ana engines"})) == ["Lovelace"]
    assert names(client.get(url, {"q": "ana cobol"})) == []


def test_filters_narrow_the_list_by_stage_owner_team_source_country_grade_and_sla(client, manager, rep, people):
    client.force_login(manager)
    url = reverse("lead-list")
    assert sorted(names(client.get(url, {"stage": "mql"}))) == ["Hopper", "Lovelace"]
    assert sorted(names(client.get(url, {"owner": rep.username}))) == ["Babbage", "Lovelace"]
    assert names(client.get(url, {"owner": "null"})) == ["Turing"]
    assert sorted(names(client.get(url, {"source": "webinar", "country": "us"}))) == ["Hopper", "Lovelace"]
    assert names(client.get(url, {"grade": "A"})) == ["Lovelace"]
    assert names(client.get(url, {"grade": "B"})) == ["Hopper"]
    assert sorted(names(client.get(url, {"grade": "D"}))) == ["Turing"]
    assert names(client.get(url, {"sla": "breached"})) == ["Babbage"]
    assert sorted(names(client.get(url, {"sla": "on_time"}))) == ["Hopper", "Lovelace"]
    other = TeamFactory(name="EMEA", territories=["GB"])
    LeadFactory(last_name="Elsewhere", team=other)
    assert names(client.get(url, {"team": other.pk})) == ["Elsewhere"]


def test_due_today_means_a_running_clock_that_ends_before_midnight(people):
    noon = timezone.localtime(timezone.now()).replace(hour=12, minute=0, second=0, microsecond=0)
    lead = people["ana"]
    Lead.objects.filter(pk=lead.pk).update(sla_due_at=noon + dt.timedelta(hours=3))
    Lead.objects.filter(pk=people["cy"].pk).update(sla_due_at=noon + dt.timedelta(hours=13))
    Lead.objects.filter(pk=people["bob"].pk).update(sla_due_at=noon - dt.timedelta(hours=1))  # breached
    found = LeadListFilter({"sla": "due_today"}, now=noon, queryset=Lead.objects.all()).qs
    assert list(found.values_list("last_name", flat=True)) == ["Lovelace"]


def test_fit_grade_filter_uses_the_engines_cutoffs():
    assert grade_range("A") == (75, None)
    assert grade_range("B") == (50, 75)
    assert grade_range("D") == (None, 25)


def test_sorting_by_fit_and_back(client, manager, people):
    client.force_login(manager)
    url = reverse("lead-list")
    assert names(client.get(url, {"sort": "-fit"})) == ["Lovelace", "Hopper", "Babbage", "Turing"]
    assert names(client.get(url, {"sort": "fit"})) == ["Turing", "Babbage", "Hopper", "Lovelace"]
    page = client.get(url, {"sort": "fit"}).content.decode()
    assert 'aria-sort="ascending"' in page


def test_a_reps_lists_hold_only_their_own_leads_and_their_teams_unassigned_mqls(client, rep, team, people):
    unassigned = LeadFactory(last_name="Open", stage=Stage.MQL, team=team, owner=None)
    client.force_login(rep)
    everything = names(client.get(reverse("lead-list")))
    assert sorted(everything) == ["Babbage", "Lovelace", unassigned.last_name]
    assert names(client.get(reverse("lead-list"), {"q": "hopper"})) == []
    inbox = names(client.get(reverse("inbox"), {"q": "babbage"}))
    assert inbox == ["Babbage"]


def test_the_inbox_search_keeps_the_deadline_order_and_filters_by_sla(client, rep, people):
    client.force_login(rep)
    assert names(client.get(reverse("inbox"))) == ["Babbage", "Lovelace"]
    assert names(client.get(reverse("inbox"), {"sla": "breached"})) == ["Babbage"]
    assert names(client.get(reverse("inbox"), {"grade": "A"})) == ["Lovelace"]


def test_an_htmx_search_gets_only_the_results_and_the_same_url_gets_the_whole_page(client, manager, people):
    client.force_login(manager)
    url = reverse("lead-list") + "?q=lovelace&stage=mql"
    fragment = client.get(url, headers={"HX-Request": "true", "HX-Target": "results"})
    body = fragment.content.decode()
    assert "<html" not in body and "Lovelace" in body and "Hopper" not in body
    assert "HX-Request" in fragment["Vary"]
    page = client.get(url).content.decode()
    # The shared URL opens the page with the search and filters filled in.
    assert "<html" in page and 'value="lovelace"' in page
    assert '<option value="mql" selected>' in page
    restored = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.content.decode()


def test_empty_results_say_what_to_do_next(client, manager, people):
    client.force_login(manager)
    body = client.get(reverse("lead-list"), {"q": "nobody-by-this-name"}).content.decode()
    assert "No lead matches" in body and "clear a filter" in body


def test_an_unknown_filter_value_is_shown_as_an_error_not_a_crash(client, manager, people):
    client.force_login(manager)
    response = client.get(reverse("lead-list"), {"grade": "Z", "sort": "nonsense"})
    assert response.status_code == 200
    assert len(response.context["rows"]) == 4  # invalid input narrows nothing


def test_a_user_without_a_role_has_no_lead_list(client):
    client.force_login(make_user("nobody"))
    assert client.get(reverse("lead-list")).status_code == 404


def test_a_search_with_more_matches_than_the_cap_says_so_and_still_pages_newest_first(client, manager, monkeypatch):
    from leads import list_views

    monkeypatch.setattr(list_views, "SEARCH_COUNT_CAP", 3)
    now = timezone.now()
    for n in range(5):
        LeadFactory(last_name=f"Common{n}", created_at=now - dt.timedelta(days=n))
    client.force_login(manager)
    response = client.get(reverse("lead-list"), {"q": "common"})
    assert "More than 3 leads match" in response.content.decode()
    # The pages reach as far as the count does (cap + 1 here): the newest matches.
    assert names(response) == [f"Common{n}" for n in range(4)]
    few = client.get(reverse("lead-list"), {"q": "common1"})
    assert names(few) == ["Common1"] and "1 lead" in few.content.decode()


def test_the_lead_page_of_a_sal_does_not_say_not_qualified(client, rep, team):
    from leads.management.commands.seed_demo import seed_definition

    seed_definition(users={})
    lead = LeadFactory(stage=Stage.SAL, owner=rep, team=team)
    client.force_login(rep)
    page = client.get(reverse("lead-detail", args=[lead.pk])).content.decode()
    assert "already at stage" not in page and "Not qualified" not in page
    assert "past MQL" in page


def test_admin_messages_wait_for_the_admin_and_app_pages_show_their_own(client, manager, team):
    client.force_login(manager)
    # An admin action run with nothing selected queues the admin's warning and redirects.
    client.post(reverse("admin:leads_lead_changelist"), {"action": "delete_selected", "index": 0})
    warning = "Items must be selected in order to perform actions"
    assert warning not in client.get(reverse("inbox")).content.decode()
    assert warning in client.get(reverse("admin:index")).content.decode()
    # The app's own message shows on the app's page.
    lead = LeadFactory(stage=Stage.MQL, team=team)
    client.post(reverse("lead-accept", args=[lead.pk]), {"next": reverse("inbox")})
    assert "Accepted: the lead is now a SAL" in client.get(reverse("inbox")).content.decode()


def test_search_covers_phone_once_leads_have_one(monkeypatch):
    from leads import filters

    real = Lead._meta.get_fields()

    class Phone:
        name = "phone"

    monkeypatch.setattr(Lead._meta, "get_fields", lambda: [*real, Phone()])
    assert filters.search_fields()[-1] == "phone"
    assert "phone__icontains" in str(filters.search_q("5550100"))
